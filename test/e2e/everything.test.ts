// The proxy in front of @modelcontextprotocol/server-everything, driven by the official SDK
// clients over stdio, as an agent would. Each describe block starts one proxy (and its server)
// and asserts what the agent observes: the server's real results, denials, filtered lists and
// the server-initiated traffic that must keep flowing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { fixturePolicy } from '../support/paths.js';
import { deferred } from '../support/wait.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, connectV2, directParams, proxyParams, type Session } from '../support/sdk-clients.js';

const TIMEOUT = { timeout: 60_000 };

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

describe('server-everything behind a v1 policy (v1 client)', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await connectV1(proxyParams(fixturePolicy('everything-v1.yaml'), servers.everything()));
  });
  after(async () => {
    await proxy?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it("returns the server's real result for an allowed call", async () => {
    const result = await call('echo', { message: 'ok, hello' });
    assertNotDenied(result);
    assert.equal(textOf(result), 'Echo: ok, hello');
    assert.notEqual(result.isError, true);
  });

  it('lets a tool the policy does not list through under default allow', async () => {
    const result = await call('get-structured-content', { location: 'Chicago' });
    assertNotDenied(result);
    assert.deepEqual(result.structuredContent, { temperature: 36, conditions: 'Light rain / drizzle', humidity: 82 });
  });

  it('denies an action: deny rule with its on_deny message, or a default naming the rule', async () => {
    assertDenied(await call('get-tiny-image'), {
      kind: 'deny_rule',
      rule: 'no images',
      message: 'Images are not allowed in this workspace',
    });
    assertDenied(await call('get-resource-links', { count: 2 }), {
      kind: 'deny_rule',
      rule: 'no links',
      message: 'Denied by rule "no links"',
    });
  });

  it('removes hidden tools from tools/list and denies calling them', async () => {
    const direct = await connectV1(directParams(servers.everything()));
    try {
      const unfiltered = (await direct.client.listTools()).tools.map((t) => t.name);
      const filtered = (await proxy.client.listTools()).tools.map((t) => t.name);
      // The comparison only means something if the server really offers the hidden tools.
      assert.ok(unfiltered.includes('get-env') && unfiltered.includes('gzip-file-as-resource'), unfiltered.join(','));
      assert.deepEqual(
        filtered,
        unfiltered.filter((name) => name !== 'get-env' && name !== 'gzip-file-as-resource'),
      );
    } finally {
      await direct.close();
    }
    assertDenied(await call('get-env'), { kind: 'hidden', message: 'Tool "get-env" is hidden by policy' });
    assertDenied(await call('gzip-file-as-resource', { name: 'x.gz', data: 'https://example.com' }), {
      kind: 'hidden',
      message: 'Tool "gzip-file-as-resource" is hidden by policy',
    });
  });

  it('allows or denies by a regex condition on an argument', async () => {
    assert.equal(textOf(await call('echo', { message: 'ok then' })), 'Echo: ok then');
    assertDenied(await call('echo', { message: 'not ok' }), {
      kind: 'condition',
      rule: 'ok messages only',
      message: 'Only messages that start with ok may be echoed',
    });
    // A missing argument fails the condition too: it is not passed to the server to reject.
    assertDenied(await call('echo', {}), { kind: 'condition', rule: 'ok messages only' });
  });

  it('allows or denies by a numeric condition, naming the failed condition', async () => {
    const allowed = await call('get-sum', { a: 10, b: 5 });
    assertNotDenied(allowed);
    assert.equal(textOf(allowed), 'The sum of 10 and 5 is 15.');
    const denial = assertDenied(await call('get-sum', { a: 11, b: 5 }), {
      kind: 'condition',
      rule: 'small first operand',
      message: 'Denied by rule "small first operand": args.a must be lte 10, got 11',
    });
    assert.equal(denial.detail.path, 'args.a');
  });

  it('rate-limits with the v1 shorthand: three calls a day, then a denial with a retry time', async (t) => {
    const started = Date.now();
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await call('get-annotated-message', { messageType: 'success' }));
    if (utcDay(started) !== utcDay(Date.now())) {
      // The day rolled over between the calls: the fourth was rightly counted in a new window.
      t.skip('the UTC day changed during the test');
      return;
    }
    for (const result of results.slice(0, 3)) {
      assertNotDenied(result);
      assert.match(textOf(result), /success/i);
    }
    const denial = assertDenied(results[3], {
      kind: 'rate_limit',
      rule: 'three a day',
      message: 'Rate limit of 3 per day reached. Try again later.',
    });
    assert.ok(denial.retryAfterSeconds !== undefined && denial.retryAfterSeconds > 0 && denial.retryAfterSeconds <= 86_400, String(denial.retryAfterSeconds));
  });
});

describe('server-everything behind an allowlist (default: deny)', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await connectV1(proxyParams(fixturePolicy('everything-default-deny.yaml'), servers.everything()));
  });
  after(async () => {
    await proxy?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it('lets listed tools through', async () => {
    assert.equal(textOf(await call('echo', { message: 'listed' })), 'Echo: listed');
    assert.equal(textOf(await call('get-sum', { a: 2, b: 3 })), 'The sum of 2 and 3 is 5.');
  });

  it('still evaluates the rules of listed tools', async () => {
    assertDenied(await call('get-sum', { a: -1, b: 3 }), { kind: 'condition', rule: 'positive numbers' });
  });

  it('offers only the tools it lists in tools/list', async () => {
    const { tools } = await proxy.client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['echo', 'get-sum']);
  });

  it('denies every tool it does not list', async () => {
    for (const tool of ['get-tiny-image', 'get-env', 'toggle-simulated-logging']) {
      const denial = assertDenied(await call(tool), { kind: 'not_listed', message: `Tool "${tool}" is not permitted by policy` });
      assert.equal(denial.rule, undefined);
    }
  });
});

describe('server-everything behind a policy in the catalogue spelling', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await connectV1(proxyParams(fixturePolicy('everything-seed.yaml'), servers.everything()));
  });
  after(async () => {
    await proxy?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it('admits three calls in the rolling window and denies the fourth with seconds to wait', async () => {
    for (const n of [1, 2, 3]) assert.equal(textOf(await call('echo', { message: `call ${n}` })), `Echo: call ${n}`);
    const denial = assertDenied(await call('echo', { message: 'call 4' }), {
      kind: 'rate_limit',
      rule: 'echo#1',
      message: /^Rate limit of 3 calls per minute reached for "echo"; try again in \d+ seconds?\.$/,
    });
    // At most a minute and one 1-second sub-window (src/state/rolling.ts).
    assert.ok(denial.retryAfterSeconds !== undefined && denial.retryAfterSeconds > 0 && denial.retryAfterSeconds <= 61, String(denial.retryAfterSeconds));
    assert.ok(denial.message.includes(`try again in ${denial.retryAfterSeconds} second`), denial.message);
  });

  it('denies with the rule\'s reason', async () => {
    assertDenied(await call('get-tiny-image'), { kind: 'deny_rule', rule: 'get-tiny-image#1', message: 'Images cost too much to render' });
  });

  it('checks required arguments against the schema from the tools/list the client made', async () => {
    const { tools } = await proxy.client.listTools();
    assert.deepEqual(tools.find((t) => t.name === 'get-sum')?.inputSchema.required, ['a', 'b']);
    const denial = assertDenied(await call('get-sum', { a: 1 }), {
      kind: 'missing_args',
      rule: 'get-sum#1',
      message: 'Missing required argument "b" for tool "get-sum"',
    });
    assert.deepEqual(denial.detail.missing, ['b']);
    assert.equal(textOf(await call('get-sum', { a: 1, b: 2 })), 'The sum of 1 and 2 is 3.');
  });
});

describe('required arguments when the client never listed the tools', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    proxy = await connectV1(proxyParams(fixturePolicy('everything-seed.yaml'), servers.everything()));
  });
  after(async () => {
    await proxy?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it('fetches the schema itself and denies a call missing a required argument', async () => {
    assertDenied(await call('get-structured-content', {}), {
      kind: 'missing_args',
      rule: 'get-structured-content#1',
      message: 'Missing required argument "location" for tool "get-structured-content"',
    });
    assertDenied(await call('get-sum', { b: 2 }), { kind: 'missing_args', message: 'Missing required argument "a" for tool "get-sum"' });
    assertDenied(await call('get-sum'), { kind: 'missing_args', message: 'Missing required arguments "a", "b" for tool "get-sum"' });
  });

  it('passes the call once every required argument is there', async () => {
    const result = await call('get-structured-content', { location: 'New York' });
    assertNotDenied(result);
    assert.deepEqual(result.structuredContent, { temperature: 33, conditions: 'Cloudy', humidity: 82 });
  });

  it("keeps its own tools/list out of the client's sight", () => {
    assert.ok(!proxy.wire.methodsSent().includes('tools/list'), `the client listed tools: ${proxy.wire.methodsSent().join(',')}`);
    assert.deepEqual(proxy.wire.strayResponses(), []);
  });
});

describe('counters and the upstream answer', TIMEOUT, () => {
  let proxy: Session<Client>;
  before(async () => {
    // URL elicitation lets server-everything register a tool that answers with a real
    // JSON-RPC error (-32042) rather than an isError result.
    proxy = await connectV1(proxyParams(fixturePolicy('everything-counters.yaml'), servers.everything()), {
      capabilities: { elicitation: { url: {} } },
    });
  });
  after(async () => {
    await proxy?.close();
  });

  it('gives the charge back when the server answers with a JSON-RPC error', async () => {
    // One call an hour is allowed; each of these fails upstream, so none of them uses it up.
    for (const id of ['first', 'second', 'third']) {
      await assert.rejects(
        proxy.client.callTool({
          name: 'trigger-url-elicitation',
          arguments: { url: 'https://example.com/authorize', errorPath: true, elicitationId: id },
        }),
        (err: { code?: number }) => err.code === -32042,
      );
    }
  });

  it('keeps the charge of a call the server ran and reported as isError', async () => {
    // Two calls an hour. The first has no message: the server runs it and answers isError.
    const failed = await proxy.client.callTool({ name: 'echo', arguments: {} });
    assertNotDenied(failed);
    assert.equal(failed.isError, true);
    assert.match(textOf(failed), /message/);
    assert.equal(textOf(await proxy.client.callTool({ name: 'echo', arguments: { message: 'second' } })), 'Echo: second');
    assertDenied(await proxy.client.callTool({ name: 'echo', arguments: { message: 'third' } }), { kind: 'rate_limit', rule: 'echo#1' });
  });
});

describe('server-initiated traffic through the proxy', TIMEOUT, () => {
  let proxy: Session<Client>;
  const listChanged = deferred();
  const rootsAsked = deferred();
  const rootsLogged = deferred<string>();
  const samplingPrompts: string[] = [];

  before(async () => {
    proxy = await connectV1(proxyParams(fixturePolicy('everything-traffic.yaml'), servers.everything()), {
      capabilities: { sampling: {}, roots: { listChanged: true } },
      setup(client) {
        client.setNotificationHandler(ToolListChangedNotificationSchema, async () => listChanged.resolve());
        client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
          if (typeof n.params.data === 'string' && n.params.data.startsWith('Roots updated')) rootsLogged.resolve(n.params.data);
        });
        client.setRequestHandler(ListRootsRequestSchema, async () => {
          rootsAsked.resolve();
          return { roots: [{ uri: 'file:///home/user/project', name: 'project' }] };
        });
        client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
          const first = req.params.messages[0]?.content;
          samplingPrompts.push(first && 'text' in first && typeof first.text === 'string' ? first.text : '');
          return { model: 'e2e-model', role: 'assistant', content: { type: 'text', text: 'sampled answer 42' } };
        });
      },
    });
  });
  after(async () => {
    await proxy?.close();
  });

  it('relays notifications/tools/list_changed, and the new tools are listed', async () => {
    // server-everything registers the tools that depend on the client's capabilities after
    // the handshake and announces each with list_changed.
    await listChanged.promise;
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('trigger-sampling-request') && names.includes('get-roots-list'), names.join(','));
  });

  it("relays the server's roots/list request, the client's answer, and a logging notification", async () => {
    await rootsAsked.promise;
    assert.equal(await rootsLogged.promise, 'Roots updated: 1 root(s) received from client');
    const result = await proxy.client.callTool({ name: 'get-roots-list', arguments: {} });
    assert.match(textOf(result), /file:\/\/\/home\/user\/project/);
  });

  it('relays progress notifications of a long-running call', async () => {
    const progress: Array<{ progress: number; total?: number }> = [];
    const result = await proxy.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 4 } }, undefined, {
      onprogress: (p) => progress.push({ progress: p.progress, total: p.total }),
    });
    assert.equal(textOf(result), 'Long running operation completed. Duration: 0.2 seconds, Steps: 4.');
    // Every notification arrives, in order, before the result.
    const token = proxy.wire.lastCall('trigger-long-running-operation')?.params?._meta as { progressToken?: unknown } | undefined;
    const arrived = proxy.wire.received.filter((m) => m.method === 'notifications/progress' && m.params?.progressToken === token?.progressToken);
    assert.deepEqual(
      arrived.map((m) => m.params?.progress),
      [1, 2, 3, 4],
    );
    const answer = proxy.wire.responseToLastCall('trigger-long-running-operation');
    assert.ok(proxy.wire.received.indexOf(answer!) > proxy.wire.received.indexOf(arrived[3]!));
    // The v1 SDK runs progress callbacks a microtask late and drops those that land together
    // with the response in one read, so the callback sees the first notifications, not
    // necessarily the last.
    assert.ok(progress.length > 0);
    assert.deepEqual(progress, arrived.slice(0, progress.length).map((m) => ({ progress: m.params?.progress, total: 4 })));
  });

  it('relays a sampling request made during an allowed call, and returns the answer in the result', async () => {
    const result = await proxy.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'say hello', maxTokens: 20 } });
    assertNotDenied(result);
    assert.deepEqual(samplingPrompts, ['Resource trigger-sampling-request context: say hello']);
    assert.match(textOf(result), /sampled answer 42/);
    assert.ok(proxy.wire.requestsReceived().some((m) => m.method === 'sampling/createMessage'));
  });

  it('still gates calls: a denied call never makes the server ask for sampling', async () => {
    assertDenied(await proxy.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'x'.repeat(41) } }), {
      kind: 'condition',
      rule: 'short prompts',
    });
    assertDenied(await proxy.client.callTool({ name: 'get-tiny-image', arguments: {} }), { kind: 'deny_rule', rule: 'no images' });
    assert.equal(samplingPrompts.length, 1);
  });
});

describe('server-everything with the v2 client in the 2025 era', TIMEOUT, () => {
  let proxy: Session<V2Client>;
  before(async () => {
    proxy = await connectV2(proxyParams(fixturePolicy('everything-v1.yaml'), servers.everything()));
  });
  after(async () => {
    await proxy?.close();
  });
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  it('negotiates a 2025 revision through the proxy', () => {
    assert.equal(proxy.client.getProtocolEra(), 'legacy');
    assert.equal(proxy.client.getNegotiatedProtocolVersion(), '2025-11-25');
    assert.equal(proxy.client.getServerVersion()?.name, 'mcp-servers/everything');
  });

  it('passes allowed calls and denies the rest, without resultType', async () => {
    assert.equal(textOf(await call('echo', { message: 'ok v2' })), 'Echo: ok v2');
    assertDenied(await call('echo', { message: 'v2' }), { kind: 'condition', rule: 'ok messages only' });
    assertDenied(await call('get-tiny-image'), { kind: 'deny_rule', message: 'Images are not allowed in this workspace' });
    const raw = proxy.wire.responseToLastCall('get-tiny-image');
    assert.equal(raw?.result?.isError, true);
    assert.equal(raw?.result && 'resultType' in raw.result, false);
  });

  it('hides tools from the list and denies calling them', async () => {
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo'), names.join(','));
    assert.ok(!names.includes('get-env') && !names.includes('gzip-file-as-resource'), names.join(','));
    assertDenied(await call('get-env'), { kind: 'hidden', message: 'Tool "get-env" is hidden by policy' });
  });
});
