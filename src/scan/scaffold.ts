// A starting policy for a scanned server: every tool, grouped by category, each with a comment
// saying what it is and the rules we recommend for it — enabled, or commented out for the user
// to switch on. Written with the `yaml` Document API so that any tool name, however odd, comes
// out as a correctly quoted key.
import { Document, isMap, isPair, isScalar, Scalar, visit, type Node, type Pair, type YAMLMap } from 'yaml';
import { CATEGORIES, classify, type Category, type Classification, type ToolAnnotations } from '../engine/risk.js';
import { shellJoin, type DiscoveredTool } from './discover.js';

export { shellJoin };

export interface Parameter {
  name: string;
  type: string;
  required: boolean;
}

/** A rule in the catalogue spelling, as plain data. */
export type RuleData = Record<string, unknown>;

export interface ScaffoldTool {
  name: string;
  description: string;
  category: Category;
  risk: Classification['risk'];
  reason: string;
  annotations: ToolAnnotations;
  parameters: Parameter[];
  /** The server sent no object inputSchema: what the tool takes is not known. */
  parametersUnknown?: true;
  recommended: { rules: RuleData[] };
}

export interface ScaffoldInput {
  server: { name: string; version: string };
  tools: DiscoveredTool[];
  /** The server command as the user gave it, for the header. */
  command: string[];
  date: Date;
}

export interface Scaffold {
  server: { name: string; version: string };
  tools: ScaffoldTool[];
  /** Names that cannot be policy keys (empty, or `*`, which means every tool). */
  skipped: string[];
}

const CATEGORY_TITLE: Record<Category, string> = {
  read: 'Read',
  write: 'Write',
  execute: 'Execute',
  financial: 'Financial',
  destructive: 'Destructive',
};

/** Placeholder cap on amount-like arguments; the comment next to it asks the user to set it. */
export const AMOUNT_CAP_PLACEHOLDER = 100;

/** The recommended rules per category (the catalogue's numbers, DESIGN.md §3a).
 * Reads get a generous limit rather than none: reads are cheap for the agent but not always
 * for the user (search and scraping APIs bill per call, and a looping agent can read a whole
 * account out); 60 a minute stays out of the way of normal work. */
export function recommendedRules(category: Category, parameters: readonly Parameter[]): RuleData[] {
  switch (category) {
    case 'read':
      return [{ action: 'allow', rate_limit: { max: 60, window: 60 } }];
    case 'write':
      return [{ action: 'allow', rate_limit: { max: 30, window: 60 } }];
    case 'execute':
      return [{ action: 'allow', rate_limit: { max: 10, window: 60 }, validate: { required_args: true } }];
    case 'financial': {
      const rules: RuleData[] = [{ action: 'allow', rate_limit: { max: 5, window: 60 }, validate: { required_args: true } }];
      const amount = amountParameter(parameters);
      if (amount) {
        rules.push({
          name: `${amount.name} cap`,
          action: 'allow',
          conditions: [{ path: `args.${amount.name}`, op: 'lte', value: AMOUNT_CAP_PLACEHOLDER }],
          on_deny: `${amount.name} is above the cap this policy allows`,
        });
      }
      return rules;
    }
    case 'destructive':
      return [{ action: 'deny', reason: 'Destructive tool: denied by policy until a person reviews it' }];
  }
}

/** A top-level numeric argument that holds money: `amount`, `unit_amount`, `total`, `price`… */
export function amountParameter(parameters: readonly Parameter[]): Parameter | undefined {
  return parameters.find(
    (p) =>
      (p.type === 'number' || p.type === 'integer') &&
      /(^|_|-|[a-z])(amount|total|price|cost|fee)s?$/i.test(p.name) &&
      // The condition path is `args.<name>`: a dot in the name would walk into an object.
      !p.name.includes('.'),
  );
}

/** `name (type, required)` data from a JSON Schema, required first, each group in schema order. */
export function parametersOf(inputSchema: unknown): Parameter[] {
  if (!isObject(inputSchema) || !isObject(inputSchema.properties)) return [];
  const required = new Set(Array.isArray(inputSchema.required) ? inputSchema.required.filter((r) => typeof r === 'string') : []);
  const all = Object.entries(inputSchema.properties).map(([name, schema]) => ({
    name,
    type: typeOf(schema),
    required: required.has(name),
  }));
  return [...all.filter((p) => p.required), ...all.filter((p) => !p.required)];
}

function typeOf(schema: unknown): string {
  if (!isObject(schema)) return 'any';
  const t = schema.type;
  if (typeof t === 'string') return t === 'array' && isObject(schema.items) && typeof schema.items.type === 'string' ? `${schema.items.type}[]` : t;
  if (Array.isArray(t)) return t.filter((x) => typeof x === 'string').join(' | ') || 'any';
  if (Array.isArray(schema.enum)) return 'enum';
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key];
    if (Array.isArray(options)) return [...new Set(options.map(typeOf))].join(' | ');
  }
  if (isObject(schema.properties)) return 'object';
  return 'any';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Classifies and orders the tools: by category (read … destructive), then by name. */
export function buildScaffold(input: Pick<ScaffoldInput, 'server' | 'tools'>): Scaffold {
  const skipped: string[] = [];
  const tools: ScaffoldTool[] = [];
  for (const tool of input.tools) {
    if (tool.name.trim() === '' || tool.name === '*') {
      skipped.push(tool.name);
      continue;
    }
    const c = classify(tool);
    const parameters = parametersOf(tool.inputSchema);
    tools.push({
      name: tool.name,
      description: tool.description ?? '',
      category: c.category,
      risk: c.risk,
      reason: c.reason,
      annotations: tool.annotations ?? {},
      parameters,
      ...(isObject(tool.inputSchema) && tool.inputSchema.type === 'object' ? {} : { parametersUnknown: true as const }),
      recommended: { rules: recommendedRules(c.category, parameters) },
    });
  }
  const rank = (c: Category) => CATEGORIES.indexOf(c);
  tools.sort((a, b) => rank(a.category) - rank(b.category) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { server: input.server, tools, skipped };
}

/** The `--format json` document. */
export function scaffoldJson(scaffold: Scaffold): string {
  const { server, tools } = scaffold;
  return JSON.stringify({ server, tools }, null, 2) + '\n';
}

/** The policy file. `recommended`: rules enabled; otherwise `rules: []` with them commented out. */
export function scaffoldYaml(scaffold: Scaffold, meta: ScaffoldMeta): string {
  const { server, tools } = scaffold;
  const doc = new Document({
    version: '1',
    description: `Policy for ${server.name} ${server.version}`,
    default: 'allow',
    tools: {},
  });
  doc.commentBefore = comment(header(scaffold, meta));
  const defaultPair = (doc.contents as YAMLMap).items[2] as Pair<Scalar>;
  defaultPair.key.commentBefore = comment(['Set to "deny" to reject calls to tools not listed below.']);

  const map = doc.get('tools') as YAMLMap;
  let section: Category | undefined;
  for (const tool of tools) {
    const lines: string[] = [];
    if (tool.category !== section) {
      section = tool.category;
      const count = tools.filter((t) => t.category === section).length;
      lines.push(`── ${CATEGORY_TITLE[section]} tools (${count}) ──`, '');
    }
    lines.push(...toolComment(tool));

    const value = doc.createNode(meta.recommended ? tool.recommended : { rules: [] }) as YAMLMap;
    compact(value);
    if (meta.recommended) {
      const note = capNote(tool);
      if (note) value.comment = comment(note);
    } else {
      const rulesDoc = new Document(tool.recommended.rules);
      compact(rulesDoc.contents as Node);
      const rules = rulesDoc.toString({ lineWidth: 0 }).trimEnd().split('\n');
      value.comment = comment(['Recommended (uncomment to use, replacing "rules: []"):', 'rules:', ...rules.map((l) => `  ${l}`), ...capNote(tool)]);
    }
    const key = new Scalar(tool.name);
    // YAML 1.1 readers take these for booleans or null; quote them for every reader.
    if (/^(y|n|yes|no|on|off|true|false|null|~)$/i.test(tool.name)) key.type = Scalar.QUOTE_DOUBLE;
    key.commentBefore = comment(lines);
    if (map.items.length > 0) key.spaceBefore = true;
    map.items.push(doc.createPair(key, value) as Pair<unknown, unknown>);
  }
  if (scaffold.skipped.length > 0) {
    map.comment = comment([`Not listed: ${scaffold.skipped.map((n) => JSON.stringify(n)).join(', ')} (not a usable policy key).`]);
  }
  return doc.toString({ lineWidth: 0 });
}

/** `rate_limit: { max: 30, window: 60 }` on one line, as the catalogue pages write it. */
function compact(node: Node): void {
  visit(node, {
    Pair(_, pair) {
      if (isPair(pair) && isScalar(pair.key) && (pair.key.value === 'rate_limit' || pair.key.value === 'validate') && isMap(pair.value)) {
        pair.value.flow = true;
      }
    },
  });
}

function capNote(tool: ScaffoldTool): string[] {
  const amount = amountParameter(tool.parameters);
  if (tool.category !== 'financial' || !amount) return [];
  return [
    `SET THE CAP: ${AMOUNT_CAP_PLACEHOLDER} is a placeholder. Use the largest ${amount.name} an agent may use,`,
    `in the unit the tool takes (often cents). Calls without ${amount.name} are denied too.`,
  ];
}

/** How the scaffold was made, for its header. */
export interface ScaffoldMeta {
  /** The server command as the user gave it. */
  command: string[];
  /** For a remote server, the scan flags that name it (`--upstream=…`), shown instead of the command. */
  remote?: string[];
  /** The npm package the server comes from (`name@version`), when known. */
  package?: string;
  date: Date;
  recommended: boolean;
}

/** `3 read, 2 write, 0 execute, 0 financial, 1 destructive`. */
export function categoryCounts(tools: readonly Pick<ScaffoldTool, 'category'>[]): string {
  return CATEGORIES.map((c) => `${tools.filter((t) => t.category === c).length} ${c}`).join(', ');
}

function header(scaffold: Scaffold, meta: ScaffoldMeta): string[] {
  const how = meta.remote ? shellJoin(meta.remote) : `-- ${shellJoin(meta.command)}`;
  return [
    `Intercept policy scaffold for ${scaffold.server.name} ${scaffold.server.version}`,
    ...(meta.package ? [`Server package: ${meta.package}`] : []),
    `Generated ${meta.date.toISOString().slice(0, 10)} by: intercept scan${meta.recommended ? ' --recommended' : ''} ${how}`,
    `${scaffold.tools.length} tool${scaffold.tools.length === 1 ? '' : 's'}: ${categoryCounts(scaffold.tools)}`,
    '',
    'Categories and risk (1-5) are a first guess from tool names, descriptions and annotations:',
    'review them. Read 60/min, write 30/min, execute 10/min with required arguments checked,',
    'financial 5/min with an amount cap, destructive denied.',
    meta.recommended
      ? 'The recommended rules are enabled.'
      : 'Every tool is allowed ("rules: []"); each has its recommended rules commented out below it.',
  ];
}

function toolComment(tool: ScaffoldTool): string[] {
  const lines: string[] = [];
  lines.push(...wrap(tool.description.trim() === '' ? '(no description)' : tool.description, 98));
  if (tool.parameters.length > 0) {
    lines.push('Parameters:');
    for (const p of tool.parameters) lines.push(`  ${p.name} (${p.type}${p.required ? ', required' : ''})`);
  } else {
    lines.push(tool.parametersUnknown ? 'Parameters: unknown (the server sent no object inputSchema)' : 'Parameters: none');
  }
  lines.push(`Category: ${CATEGORY_TITLE[tool.category]}, risk ${tool.risk}/5 (${tool.reason})`);
  return lines;
}

/** Word-wraps prose at `width`, keeping the description's own paragraphs. */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  for (const paragraph of clean(text).split('\n')) {
    let line = '';
    for (const word of paragraph.split(/\s+/).filter((w) => w !== '')) {
      if (line !== '' && line.length + 1 + word.length > width) {
        out.push(line);
        line = word;
      } else {
        line = line === '' ? word : `${line} ${word}`;
      }
    }
    if (line !== '' || out.length === 0 || out[out.length - 1] !== '') out.push(line);
  }
  while (out.length > 1 && out[out.length - 1] === '') out.pop();
  return out;
}

/** Server-supplied text goes into comments: no control characters, one kind of newline. */
function clean(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
}

/** Comment text for the yaml library, which puts `#` before each line. */
function comment(lines: readonly string[]): string {
  return lines.map((l) => (l === '' ? '' : ` ${clean(l).replace(/\n/g, ' ')}`)).join('\n');
}
