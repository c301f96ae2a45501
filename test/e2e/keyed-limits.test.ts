// Limits keyed by argument values, through the real proxy (`node bin/intercept.js -c <policy>
// -- node dist/demo/server.js`) and the official v1 SDK client: each conversation has its own
// cap, and `key: args` stops an exact repeat without stopping a different call.
// Needs the build (dist/), which `npm test` makes first.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';

const PER_CONVERSATION = `
tools:
  send_conversation_message:
    rules:
      - action: allow
        rate_limit: { max: 2, window: 60, key: [args.conversation_sid] }
`;

const NO_REPEATS = `
tools:
  send_conversation_message:
    rules:
      - action: allow
        rate_limit: { max: 1, window: 60, key: args }
`;

async function send(client: Client, conversation_sid: string, body: string): Promise<unknown> {
  return client.callTool({ name: 'send_conversation_message', arguments: { conversation_sid, body } });
}

/** Two conversations, CH0001 and CH0002, on the demo server. */
async function createConversations(client: Client): Promise<void> {
  for (const name of ['first', 'second']) {
    const result = await client.callTool({ name: 'create_conversation', arguments: { friendly_name: name } });
    assertNotDenied(result);
  }
}

describe('keyed limits through the proxy', { timeout: 60_000 }, () => {
  let dir: TempDir;
  before(async () => {
    dir = await makeTempDir('intercept-keyed-');
  });
  after(async () => {
    await dir.cleanup();
  });

  describe('rate_limit per conversation: {max: 2, window: 60, key: [args.conversation_sid]}', () => {
    let session: Session<Client>;
    before(async () => {
      const policy = await writePolicy(dir.path, PER_CONVERSATION, 'per-conversation.yaml');
      session = await connectV1(proxyParams(policy, servers.demo()));
      await createConversations(session.client);
    });
    after(async () => {
      await session.close();
    });

    it('admits two messages to CH0001', async () => {
      for (const body of ['one', 'two']) {
        const result = await send(session.client, 'CH0001', body);
        assertNotDenied(result);
        assert.match(textOf(result), /^Sent message IM\d+ to CH0001/);
      }
    });

    it('denies the third message to CH0001, naming the conversation', async () => {
      const result = await send(session.client, 'CH0001', 'three');
      const denial = assertDenied(result, {
        kind: 'rate_limit',
        rule: 'send_conversation_message#1',
        message: /^Rate limit of 2 calls per minute reached for "send_conversation_message" with conversation_sid="CH0001"; try again in \d+ seconds?\.$/,
      });
      assert.deepEqual(denial.detail.key, { 'args.conversation_sid': 'CH0001' });
      assert.match(String(denial.detail.counter), /^send_conversation_message\._rate:send_conversation_message#1\[[0-9a-f]{16}\]$/);
    });

    it('still admits messages to CH0002, which has its own count', async () => {
      for (const body of ['one', 'two']) {
        const result = await send(session.client, 'CH0002', body);
        assertNotDenied(result);
        assert.match(textOf(result), /^Sent message IM\d+ to CH0002/);
      }
      assertDenied(await send(session.client, 'CH0002', 'three'), { kind: 'rate_limit' });
    });

    it('the denied message never reached the server', async () => {
      const listed = await session.client.callTool({ name: 'list_conversation_messages', arguments: { conversation_sid: 'CH0001' } });
      const text = textOf(listed);
      assert.match(text, /^2 messages in CH0001$/m);
      assert.match(text, /: one$/m);
      assert.match(text, /: two$/m);
      assert.doesNotMatch(text, /three/);
    });
  });

  describe('rate_limit on identical calls: {max: 1, window: 60, key: args}', () => {
    let session: Session<Client>;
    before(async () => {
      const policy = await writePolicy(dir.path, NO_REPEATS, 'no-repeats.yaml');
      session = await connectV1(proxyParams(policy, servers.demo()));
      await createConversations(session.client);
    });
    after(async () => {
      await session.close();
    });

    it('denies an exact repeat, but not a different body or another conversation', async () => {
      assertNotDenied(await send(session.client, 'CH0001', 'hello'));
      assertDenied(await send(session.client, 'CH0001', 'hello'), {
        kind: 'rate_limit',
        message: /^Rate limit of 1 call per minute reached for identical calls to "send_conversation_message"; try again in \d+ seconds?\.$/,
      });
      assertNotDenied(await send(session.client, 'CH0001', 'hello again'));
      assertNotDenied(await send(session.client, 'CH0002', 'hello'));
    });

    it('the same arguments in another order are the same call', async () => {
      const reordered = await session.client.callTool({
        name: 'send_conversation_message',
        arguments: { body: 'hello again', conversation_sid: 'CH0001' },
      });
      const denial = assertDenied(reordered, { kind: 'rate_limit' });
      assert.equal(denial.detail.key, 'args');
    });
  });
});
