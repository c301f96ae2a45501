// The tools the upstream offers, as learnt from every tools/list result that passes through
// (the client's own, or one the proxy asks for). Validation rules read the tool's inputSchema
// from here, `classes:` rules its risk class, and pinning its whole definition; a
// notifications/tools/list_changed from the upstream empties it.
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { isObject } from '../jsonrpc/message.js';
import { readToolPages } from '../jsonrpc/tool-pages.js';
import type { ToolSchemaInfo } from '../engine/types.js';
import type { ToolClass } from '../policy/model.js';
import { classify, type ToolInfo } from '../engine/risk.js';

interface Entry {
  /** The tool as the upstream lists it. */
  definition: Readonly<Record<string, unknown>>;
  inputSchema: Record<string, unknown>;
  info?: ToolSchemaInfo;
  toolClass?: ToolClass;
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
      this.tools.set(tool.name, { definition: tool, inputSchema: schema });
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
    const entry = await this.entryFor(name, fetchPage);
    if (!entry) return null;
    entry.info ??= { required: requiredOf(entry.inputSchema) };
    if (wantValidator && !entry.info.validate) entry.info.validate = this.compileValidator(entry.inputSchema);
    return entry.info;
  }

  /** The tool's risk class, from its definition, listing the tools when it is not known yet;
   * null when the upstream has no such tool or could not be asked. */
  async classFor(name: string, fetchPage: PageFetcher): Promise<ToolClass | null> {
    const entry = await this.entryFor(name, fetchPage);
    return entry ? classOfEntry(entry) : null;
  }

  /** The class of a tool already recorded, without asking the upstream. */
  classOf(name: string): ToolClass | undefined {
    const entry = this.tools.get(name);
    return entry ? classOfEntry(entry) : undefined;
  }

  /** The tool's definition as the upstream lists it, listing the tools when it is not known
   * yet; null when the upstream has no such tool or could not be asked. */
  async definitionFor(name: string, fetchPage: PageFetcher): Promise<Readonly<Record<string, unknown>> | null> {
    return (await this.entryFor(name, fetchPage))?.definition ?? null;
  }

  private async entryFor(name: string, fetchPage: PageFetcher): Promise<Entry | undefined> {
    let entry = this.tools.get(name);
    // A tools/list_changed during the listing discards it (servers announce changes right after
    // the handshake), so list again, a bounded number of times.
    for (let attempt = 0; !entry && !this.complete && attempt < MAX_LISTINGS; attempt++) {
      const generation = this.generation;
      try {
        await (this.listing ??= this.listAll(fetchPage));
      } catch {
        this.listing = undefined;
        return undefined;
      }
      if (generation !== this.generation) this.listing = undefined;
      entry = this.tools.get(name);
    }
    return entry;
  }

  private async listAll(fetchPage: PageFetcher): Promise<void> {
    const generation = this.generation;
    const onPage = (result: { tools: unknown[] }) => {
      // A list_changed while listing makes the pages read so far stale: stop recording.
      if (generation !== this.generation) return false;
      this.record(result.tools);
    };
    if (await readToolPages(fetchPage, onPage, MAX_PAGES)) this.complete = true;
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

function classOfEntry(entry: Entry): ToolClass {
  if (entry.toolClass === undefined) {
    const d = entry.definition;
    const info: ToolInfo = { name: d.name as string };
    if (typeof d.description === 'string') info.description = d.description;
    if (isObject(d.annotations)) info.annotations = d.annotations;
    entry.toolClass = classify(info).category;
  }
  return entry.toolClass;
}

function requiredOf(schema: Record<string, unknown>): string[] {
  const required = schema.required;
  return Array.isArray(required) ? required.filter((r): r is string => typeof r === 'string') : [];
}
