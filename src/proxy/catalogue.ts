// The tools the upstream offers, as learnt from every tools/list result that passes through
// (the client's own, or one the proxy asks for). Validation rules read the tool's inputSchema
// from here; a notifications/tools/list_changed from the upstream empties it.
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { isObject } from '../jsonrpc/message.js';
import type { ToolSchemaInfo } from '../engine/types.js';

interface Entry {
  inputSchema: Record<string, unknown>;
  info?: ToolSchemaInfo;
}

/** Fetches one page of tools/list from the upstream (the proxy's own request). */
export type PageFetcher = (cursor: string | undefined) => Promise<{ tools: unknown[]; nextCursor?: string }>;

const MAX_PAGES = 100;
const MAX_LISTINGS = 3;

export class ToolCatalogue {
  private tools = new Map<string, Entry>();
  /** Bumped on invalidation so a listing that started before it does not repopulate stale data. */
  private generation = 0;
  private complete = false;
  private listing?: Promise<void>;
  private ajv?: { draft7: Ajv; draft2020: Ajv2020 };

  /** Records the tools of one tools/list result page. */
  record(tools: unknown): void {
    if (!Array.isArray(tools)) return;
    for (const tool of tools) {
      if (!isObject(tool) || typeof tool.name !== 'string') continue;
      const schema = isObject(tool.inputSchema) ? tool.inputSchema : {};
      this.tools.set(tool.name, { inputSchema: schema });
    }
  }

  invalidate(): void {
    this.tools.clear();
    this.complete = false;
    this.listing = undefined;
    this.generation++;
  }

  /** The tool's schema, listing the upstream's tools (every page) when it is not known yet.
   * null when the upstream has no such tool or could not be asked. */
  async schemaFor(name: string, fetchPage: PageFetcher, wantValidator: boolean): Promise<ToolSchemaInfo | null> {
    let entry = this.tools.get(name);
    // A tools/list_changed during the listing discards it (servers announce changes right after
    // the handshake), so list again, a bounded number of times.
    for (let attempt = 0; !entry && !this.complete && attempt < MAX_LISTINGS; attempt++) {
      const generation = this.generation;
      try {
        await (this.listing ??= this.listAll(fetchPage));
      } catch {
        this.listing = undefined;
        return null;
      }
      if (generation !== this.generation) this.listing = undefined;
      entry = this.tools.get(name);
    }
    if (!entry) return null;
    entry.info ??= { required: requiredOf(entry.inputSchema) };
    if (wantValidator && !entry.info.validate) entry.info.validate = this.compileValidator(entry.inputSchema);
    return entry.info;
  }

  private async listAll(fetchPage: PageFetcher): Promise<void> {
    const generation = this.generation;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await fetchPage(cursor);
      if (generation !== this.generation) return;
      this.record(result.tools);
      cursor = result.nextCursor;
      if (cursor === undefined) {
        this.complete = true;
        return;
      }
    }
  }

  private compileValidator(schema: Record<string, unknown>): (args: Record<string, unknown>) => string[] {
    this.ajv ??= {
      draft7: new Ajv({ strict: false, allErrors: true, validateFormats: false }),
      draft2020: new Ajv2020({ strict: false, allErrors: true, validateFormats: false }),
    };
    const uses2020 = typeof schema.$schema === 'string' && schema.$schema.includes('2020-12');
    try {
      const { $schema: _ignored, ...rest } = schema;
      const check = (uses2020 ? this.ajv.draft2020 : this.ajv.draft7).compile(rest);
      return (args) => {
        if (check(args)) return [];
        return (check.errors ?? []).map((e) => `${e.instancePath || '(arguments)'} ${e.message ?? 'is invalid'}`.trim());
      };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      return () => [`the tool's inputSchema could not be compiled: ${reason}`];
    }
  }
}

function requiredOf(schema: Record<string, unknown>): string[] {
  const required = schema.required;
  return Array.isArray(required) ? required.filter((r): r is string => typeof r === 'string') : [];
}
