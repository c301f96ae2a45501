// Policy entries that name no tool the server offers, and the did-you-mean for each: the word
// splitting, the two kinds of suggestion (a typo, another spelling of the same name), the
// entries checked, the proxy telling it once per policy, and only on a whole listing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyEvent } from '../../src/audit/event.js';
import { compile, type CompiledPolicy } from '../../src/engine/compile.js';
import { describeUnmatched, unmatchedEntries } from '../../src/engine/unmatched.js';
import { createLogger, type Logger } from '../../src/log.js';
import { parsePolicy } from '../../src/policy/load.js';
import { nameWords, ToolNameIndex } from '../../src/policy/tool-names.js';
import { Interceptor } from '../../src/proxy/interceptor.js';
import { ListingWalk } from '../../src/proxy/listing-walk.js';
import { noteListing, withLock } from '../../src/proxy/policy-holder.js';
import { MemoryCounterStore } from '../../src/state/memory.js';
import type { Channel } from '../../src/transport/channel.js';

// A few names as @twilio-alpha/mcp lists them with --services twilio_conversations_v1,twilio_studio_v2
// (the e2e test checks the seed policy against the server's whole, real list).
const TWILIO = [
  'TwilioConversationsV1--FetchConversation',
  'TwilioConversationsV1--ListConversation',
  'TwilioConversationsV1--CreateConversation',
  'TwilioConversationsV1--CreateConversationMessage',
  'TwilioConversationsV1--FetchConversationMessage',
  'TwilioConversationsV1--CreateServiceConversationMessage',
  'TwilioConversationsV1--CreateConversationWithParticipants',
  'TwilioStudioV2--FetchExecution',
  'TwilioStudioV2--CreateExecution',
  'TwilioStudioV2--DeleteFlow',
];
const EVERYTHING = ['echo', 'get-sum', 'get-env', 'get-tiny-image', 'trigger-long-running-operation', 'toggle-simulated-logging'];

function compiled(yaml: string, file = 'policy.yaml'): CompiledPolicy {
  const loaded = parsePolicy(yaml, file);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
  return compile(loaded.policy);
}

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('info', (line) => lines.push(line)), lines };
}

describe('nameWords', () => {
  it('splits snake_case, camelCase, PascalCase and punctuation into singular lower-case words', () => {
    assert.deepEqual(nameWords('create_conversation'), { prefix: [], body: ['create', 'conversation'] });
    assert.deepEqual(nameWords('createConversations'), { prefix: [], body: ['create', 'conversation'] });
    assert.deepEqual(nameWords('get-sum'), { prefix: [], body: ['get', 'sum'] });
    assert.deepEqual(nameWords('HTTPServerEntries'), { prefix: [], body: ['http', 'server', 'entry'] });
    assert.deepEqual(nameWords('list_addresses'), { prefix: [], body: ['list', 'addresse'] });
  });

  it('takes what comes before `--`, `.`, `/` or `__` as the namespace', () => {
    assert.deepEqual(nameWords('TwilioConversationsV1--CreateConversation'), { prefix: ['twilio', 'conversation', 'v', '1'], body: ['create', 'conversation'] });
    assert.deepEqual(nameWords('github.create_issue'), { prefix: ['github'], body: ['create', 'issue'] });
    assert.deepEqual(nameWords('slack/post_message'), { prefix: ['slack'], body: ['post', 'message'] });
    assert.deepEqual(nameWords('mcp__fs__read_file'), { prefix: ['mcp', 'fs'], body: ['read', 'file'] });
  });
});

describe('ToolNameIndex.suggest', () => {
  const everything = new ToolNameIndex(EVERYTHING);
  const twilio = new ToolNameIndex(TWILIO);

  it('finds a typo within two edits, case ignored', () => {
    assert.deepEqual(everything.suggest('echoo'), { tool: 'echo', by: 'spelling' });
    assert.deepEqual(everything.suggest('Echo'), { tool: 'echo', by: 'spelling' });
    assert.deepEqual(everything.suggest('get_sum'), { tool: 'get-sum', by: 'spelling' });
  });

  it('maps the catalogue spelling onto the server\'s: same words, the verb matching, the fewest extra words', () => {
    assert.deepEqual(twilio.suggest('create_conversation'), { tool: 'TwilioConversationsV1--CreateConversation', by: 'words' });
    assert.deepEqual(twilio.suggest('create_execution'), { tool: 'TwilioStudioV2--CreateExecution', by: 'words' });
    assert.deepEqual(twilio.suggest('list_conversations'), { tool: 'TwilioConversationsV1--ListConversation', by: 'words' });
    assert.deepEqual(twilio.suggest('longRunningOperation'), undefined);
    assert.deepEqual(everything.suggest('longRunningOperation'), { tool: 'trigger-long-running-operation', by: 'words' });
  });

  it('takes a verb meaning the same when no tool has the name\'s own', () => {
    assert.deepEqual(twilio.suggest('send_conversation_message'), { tool: 'TwilioConversationsV1--CreateConversationMessage', by: 'words' });
    assert.deepEqual(twilio.suggest('remove_flow'), { tool: 'TwilioStudioV2--DeleteFlow', by: 'words' });
  });

  it('names the tools that fit equally well', () => {
    assert.deepEqual(twilio.suggest('conversation'), {
      tool: 'TwilioConversationsV1--FetchConversation',
      also: ['TwilioConversationsV1--ListConversation', 'TwilioConversationsV1--CreateConversation'],
      by: 'words',
    });
  });

  it('says nothing when any answer would be a guess', () => {
    for (const name of ['get_weather', 'ab', 'add', 'create_invoice', 'fetch']) assert.equal(twilio.suggest(name), undefined, name);
    // get_environment shares only its verb with get-env: no word of substance.
    assert.equal(everything.suggest('get_environment'), undefined);
    assert.equal(everything.suggest('x'.repeat(10_000)), undefined);
  });

  it('stays exact over thousands of tools and hundreds of names', () => {
    const verbs = ['Create', 'Fetch', 'List', 'Update', 'Delete'];
    const tools = Array.from({ length: 5000 }, (_, i) => `Svc${i % 37}V1--${verbs[i % 5]}Widget${i}Part`);
    const index = new ToolNameIndex(tools);
    for (let i = 0; i < 500; i++) {
      const n = i * 9;
      const wanted = `Svc${n % 37}V1--${verbs[n % 5]}Widget${n}Part`;
      assert.equal(index.suggest(`${verbs[n % 5]!.toLowerCase()}_widget${n}_parts`)?.tool, wanted);
    }
  });
});

describe('unmatchedEntries', () => {
  const POLICY = `tools:
  echoo: {rules: []}
  echo: {rules: []}
  get_sum: {rules: []}
  "get-*": {rules: []}
  "nothing_*": {rules: []}
hide: [get_enviroment, "zz*", get-env]
classes:
  financial: {rules: [{action: deny}]}
`;

  it('lists every tools key and hide entry that matches no offered tool, with file and line', () => {
    const entries = unmatchedEntries(compiled(POLICY, 'p.yaml'), EVERYTHING, new ToolNameIndex(EVERYTHING));
    assert.deepEqual(
      entries.map((e) => [e.section, e.name, e.pattern, e.pos?.line, e.suggestion?.tool]),
      [
        ['tools', 'echoo', false, 2, 'echo'],
        ['tools', 'get_sum', false, 4, 'get-sum'],
        ['tools', 'nothing_*', true, 6, undefined],
        ['hide', 'get_enviroment', false, 7, undefined],
        ['hide', 'zz*', true, 7, undefined],
      ],
    );
    assert.ok(entries.every((e) => e.file === 'p.yaml'));
  });

  it('says where and what, in one line per entry', () => {
    const [typo, , pattern, hidden] = unmatchedEntries(compiled(POLICY, 'p.yaml'), EVERYTHING, new ToolNameIndex(EVERYTHING));
    assert.equal(describeUnmatched(typo!), 'p.yaml:2:3: tools.echoo matches no tool the server offers; did you mean "echo"?');
    assert.equal(describeUnmatched(pattern!), 'p.yaml:6:3: tools."nothing_*" (a pattern) matches no tool the server offers');
    assert.equal(describeUnmatched(hidden!), 'p.yaml:7:8: hide entry "get_enviroment" matches no tool the server offers');
  });

  it('counts `hide: ["*"]` as matching whenever there is a tool', () => {
    assert.deepEqual(unmatchedEntries(compiled('hide: ["*"]\n'), ['a']), []);
    assert.equal(unmatchedEntries(compiled('hide: ["*"]\n'), []).length, 1);
  });
});

describe('noteListing (the proxy, once per policy)', () => {
  it('warns once per loaded policy, with a policy_unmatched event per entry', () => {
    const policy = compiled('tools:\n  echoo: {rules: []}\n  echo: {rules: []}\n', 'p.yaml');
    const { log, lines } = capture();
    const events: ProxyEvent[] = [];
    const sink = { emit: (e: ProxyEvent) => events.push(e) };
    noteListing(policy, EVERYTHING, log, sink);
    noteListing(policy, EVERYTHING, log, sink);
    // A lock file put beside it is the same policy.
    noteListing(withLock(policy, undefined), EVERYTHING, log, sink);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, / WARN p\.yaml:2:3: tools\.echoo matches no tool the server offers; did you mean "echo"\?\n$/);
    assert.deepEqual(events, [{ type: 'policy_unmatched', file: 'p.yaml', line: 2, section: 'tools', name: 'echoo', suggestion: 'echo', tools: EVERYTHING.length }]);
    // The same text loaded again is a new policy.
    noteListing(compiled('tools:\n  echoo: {rules: []}\n', 'p.yaml'), EVERYTHING, log, sink);
    assert.equal(lines.length, 2);
  });
});

describe('ListingWalk', () => {
  const page = (names: string[], nextCursor?: string) => ({ tools: names.map((name) => ({ name })), ...(nextCursor ? { nextCursor } : {}) });

  it('gives the names when a walk from the first page reaches the last', () => {
    const walk = new ListingWalk();
    assert.equal(walk.page(undefined, page(['a', 'b'], 'c1')), undefined);
    assert.deepEqual(walk.page('c1', page(['c'])), ['a', 'b', 'c']);
  });

  it('gives nothing for a page out of turn, or after the tools changed', () => {
    const walk = new ListingWalk();
    assert.equal(walk.page('c1', page(['c'])), undefined);
    walk.page(undefined, page(['a'], 'c1'));
    assert.equal(walk.page('other', page(['c'])), undefined);
    walk.page(undefined, page(['a'], 'c1'));
    walk.reset();
    assert.equal(walk.page('c1', page(['c'])), undefined);
    assert.equal(walk.page(undefined, { tools: 'nope' }), undefined);
  });
});

describe('the interceptor checks the policy on a whole listing', () => {
  class Recorder implements Channel {
    send(): void {}
    sendRaw(): void {}
  }

  it('warns after the last page of a paginated tools/list, not before', async () => {
    const { log, lines } = capture();
    const policy = compiled('tools:\n  get_sum: {rules: []}\n');
    const interceptor = new Interceptor({ client: new Recorder(), upstream: new Recorder(), policy: () => policy, store: new MemoryCounterStore(), sessionId: 's', log });
    const exchange = (id: number, params: unknown, result: unknown) => {
      interceptor.fromClient({ kind: 'message', value: { jsonrpc: '2.0', id, method: 'tools/list', params } });
      interceptor.fromUpstream({ kind: 'message', value: { jsonrpc: '2.0', id, result } });
    };
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    exchange(1, {}, { tools: [{ name: 'echo', inputSchema: { type: 'object' } }], nextCursor: 'p2' });
    await tick();
    assert.deepEqual(lines, []);
    exchange(2, { cursor: 'p2' }, { tools: [{ name: 'get-sum', inputSchema: { type: 'object' } }] });
    await tick();
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /tools\.get_sum matches no tool the server offers; did you mean "get-sum"\?/);
  });
});
