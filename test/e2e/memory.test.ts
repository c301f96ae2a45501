// The proxy in front of @modelcontextprotocol/server-memory, whose knowledge graph lives in a
// file: allowed writes must really be persisted there, denied ones must leave it alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { fixturePolicy } from '../support/paths.js';
import { makeTempDir, type TempDir } from '../support/temp.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, proxyParams, type Session } from '../support/sdk-clients.js';

interface StoredEntity {
  type: 'entity';
  name: string;
  entityType: string;
  observations: string[];
}

describe('server-memory behind a rate limit and a deny rule', { timeout: 60_000 }, () => {
  let dir: TempDir;
  let memoryFile: string;
  let proxy: Session<Client>;

  before(async () => {
    dir = await makeTempDir('intercept-e2e-memory-');
    memoryFile = dir.file('memory.jsonl');
    proxy = await connectV1(proxyParams(fixturePolicy('memory.yaml'), servers.memory(memoryFile)));
  });
  after(async () => {
    await proxy?.close();
    await dir?.cleanup();
  });

  /** The entities the server has written to its file. */
  async function stored(): Promise<StoredEntity[]> {
    const text = await readFile(memoryFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { type: string })
      .filter((item): item is StoredEntity => item.type === 'entity');
  }

  const create = (name: string, observation: string) =>
    proxy.client.callTool({ name: 'create_entities', arguments: { entities: [{ name, entityType: 'person', observations: [observation] }] } });

  it('creates an entity, and the server persists it in its file', async () => {
    const result = await create('Ada Lovelace', 'wrote the first program');
    assertNotDenied(result);
    assert.match(textOf(result), /Ada Lovelace/);
    assert.deepEqual(await stored(), [{ type: 'entity', name: 'Ada Lovelace', entityType: 'person', observations: ['wrote the first program'] }]);
  });

  it('denies delete_entities with its reason, and the entity stays', async () => {
    assertDenied(await proxy.client.callTool({ name: 'delete_entities', arguments: { entityNames: ['Ada Lovelace'] } }), {
      kind: 'deny_rule',
      rule: 'delete_entities#1',
      message: 'Agents may add to the knowledge graph but never delete from it',
    });
    assert.deepEqual((await stored()).map((e) => e.name), ['Ada Lovelace']);
  });

  it('admits a second create_entities and denies the third, which is not persisted', async () => {
    assertNotDenied(await create('Alan Turing', 'broke Enigma'));
    const denial = assertDenied(await create('Grace Hopper', 'wrote the first compiler'), {
      kind: 'rate_limit',
      rule: 'create_entities#1',
      message: /^Rate limit of 2 calls per hour reached for "create_entities"; try again in \d+ seconds?\.$/,
    });
    // At most an hour and one 1-minute sub-window (src/state/rolling.ts).
    assert.ok(denial.retryAfterSeconds !== undefined && denial.retryAfterSeconds > 0 && denial.retryAfterSeconds <= 3660);
    assert.deepEqual((await stored()).map((e) => e.name), ['Ada Lovelace', 'Alan Turing']);
  });

  it('leaves tools the policy does not mention alone: read_graph shows what was stored', async () => {
    const result = await proxy.client.callTool({ name: 'read_graph', arguments: {} });
    assertNotDenied(result);
    const graph = JSON.parse(textOf(result)) as { entities: Array<{ name: string }> };
    assert.deepEqual(graph.entities.map((e) => e.name), ['Ada Lovelace', 'Alan Turing']);
  });
});
