// `--input-schemas FILE`: what the trail does not hold about the tools (their inputSchema, for
// validate rules, and their risk class, for `classes:` rules), in one of three shapes:
//   { "<tool>": <inputSchema>, … }                       a plain map
//   { "tools": [{ name, inputSchema, description?, annotations? }, …] }   a tools/list result
//   { "server": …, "tools": [{ name, parameters, category, … }, …] }       `intercept scan --format json`
// The scan's document names each parameter and whether it is required, and the tool's
// category, but not the whole schema: it serves `required_args` and `classes:`, not
// `validate: {schema: true}`.
import { readFile, stat } from 'node:fs/promises';
import type { ToolFacts } from '../audit/replay.js';
import { isObject } from '../jsonrpc/message.js';
import { TOOL_CLASSES, type ToolClass } from '../policy/model.js';
import { ToolCatalogue } from '../proxy/catalogue.js';

const MAX_BYTES = 32 * 1024 * 1024;
const MAX_TOOLS = 10_000;

/** The facts of the tools in `wanted` (the others are not looked at), or what is wrong with
 * the file, naming the entry. */
export async function readInputSchemas(file: string, wanted: ReadonlySet<string>): Promise<Map<string, ToolFacts> | string> {
  let text: string;
  try {
    if ((await stat(file)).size > MAX_BYTES) return `${file}: larger than ${MAX_BYTES / 1024 / 1024} MiB`;
    text = await readFile(file, 'utf8');
  } catch (err) {
    return `cannot read ${file}: ${(err as Error).message}`;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return `${file} is not valid JSON: ${(err as Error).message}`;
  }
  if (!isObject(doc)) return `${file}: expected a JSON object (tool name → inputSchema, or a "tools" list)`;

  // Each entry as a tools/list definition, or as the scan describes it.
  const listed: { where: string; name: string; entry: Record<string, unknown> }[] = [];
  if (Array.isArray(doc.tools)) {
    if (doc.tools.length > MAX_TOOLS) return `${file}: more than ${MAX_TOOLS} tools`;
    for (const [i, entry] of doc.tools.entries()) {
      const where = `${file}: tools[${i}]`;
      if (!isObject(entry) || typeof entry.name !== 'string' || entry.name === '') return `${where}: expected an object with a "name"`;
      if (entry.inputSchema !== undefined && !isObject(entry.inputSchema)) return `${where}.inputSchema: expected a JSON object`;
      if (entry.inputSchema === undefined && !Array.isArray(entry.parameters)) return `${where}: has neither "inputSchema" nor "parameters"`;
      listed.push({ where, name: entry.name, entry });
    }
  } else {
    const names = Object.keys(doc);
    if (names.length > MAX_TOOLS) return `${file}: more than ${MAX_TOOLS} tools`;
    for (const name of names) {
      const schema = doc[name];
      if (!isObject(schema)) return `${file}: ${JSON.stringify(name)}: expected the tool's inputSchema, a JSON object`;
      // No definition beyond the schema: the tool's class cannot be told.
      listed.push({ where: `${file}: ${JSON.stringify(name)}`, name, entry: { name, inputSchema: schema, schemaOnly: true } });
    }
  }

  const facts = new Map<string, ToolFacts>();
  // The proxy's own catalogue reads schemas and classes, so they mean here what they mean there.
  const catalogue = new ToolCatalogue();
  const noPages = async () => ({ tools: [] });
  for (const { where, name, entry } of listed) {
    if (!wanted.has(name) || facts.has(name)) continue;
    if (entry.inputSchema !== undefined) {
      const { schemaOnly, ...definition } = entry;
      catalogue.record([definition]);
      const schema = (await catalogue.schemaFor(name, noPages, true)) ?? undefined;
      facts.set(name, { schema, ...(schemaOnly !== true && { toolClass: (await catalogue.classFor(name, noPages)) ?? undefined }) });
      continue;
    }
    const scanned = fromScan(entry);
    if (typeof scanned === 'string') return `${where}.${scanned}`;
    facts.set(name, scanned);
  }
  return facts;
}

/** An entry of `intercept scan --format json`: the required parameters and the category. */
function fromScan(entry: Record<string, unknown>): ToolFacts | string {
  const required: string[] = [];
  for (const [i, p] of (entry.parameters as unknown[]).entries()) {
    if (!isObject(p) || typeof p.name !== 'string') return `parameters[${i}]: expected an object with a "name"`;
    if (p.required === true) required.push(p.name);
  }
  const facts: ToolFacts = { schema: { required } };
  if (entry.category !== undefined) {
    if (!TOOL_CLASSES.includes(entry.category as ToolClass)) return `category: expected one of ${TOOL_CLASSES.join(', ')}`;
    facts.toolClass = entry.category as ToolClass;
  }
  return facts;
}
