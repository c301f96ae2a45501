// An upstream delivers only answers to requests it was sent: the ledger itself, the child
// process's stream channel, and the remote HTTP upstream, each against a server that answers
// ids it was never sent and answers twice.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/log.js';
import type { Inbound } from '../../src/transport/channel.js';
import { openHttpUpstream } from '../../src/transport/http-upstream.js';
import { SentRequests } from '../../src/transport/sent-requests.js';
import { StreamChannel } from '../../src/transport/stdio.js';
import { eventually } from '../support/wait.js';

const answer = (id: unknown, text = 'ok') => ({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } });
const request = (id: unknown, method = 'tools/call') => ({ jsonrpc: '2.0', id, method, params: {} });

describe('SentRequests', () => {
  it('lets the first answer to a request sent through, and no other', () => {
    const sent = new SentRequests();
    sent.sent(request(1));
    assert.equal(sent.unsolicited(answer(1)), undefined);
    assert.equal(sent.unsolicited(answer(1)), 1, 'a second answer');
    assert.equal(sent.unsolicited(answer('never')), 'never', 'an id never sent');
    sent.sent(request('1'));
    assert.equal(sent.unsolicited(answer(1)), 1, '1 and "1" are different ids');
    assert.equal(sent.unsolicited(answer('1')), undefined);
  });

  it('owes no answer after a cancellation, and lets through what is not an answer to anything', () => {
    const sent = new SentRequests();
    sent.sent(request(7));
    sent.sent({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } });
    assert.equal(sent.unsolicited(answer(7)), 7);
    assert.equal(sent.unsolicited({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }), undefined);
    assert.equal(sent.unsolicited(request(8, 'sampling/createMessage')), undefined);
    assert.equal(sent.unsolicited({ jsonrpc: '2.0', method: 'notifications/progress', params: {} }), undefined);
    assert.equal(sent.unsolicited('not even an object'), undefined);
  });

  it('an id used again awaits its new answer', () => {
    const sent = new SentRequests();
    sent.sent(request(3));
    assert.equal(sent.unsolicited(answer(3)), undefined);
    sent.sent(request(3));
    assert.equal(sent.unsolicited(answer(3)), undefined);
  });
});

describe('StreamChannel towards a child process', () => {
  it('delivers the answer to a request it carried, and drops forged and repeated answers', () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const delivered: Inbound[] = [];
    const dropped: unknown[] = [];
    const channel = new StreamChannel({
      input,
      output,
      maxMessageBytes: 1 << 20,
      maxDepth: 64,
      onMessage: (ev) => delivered.push(ev),
      onEnd: () => {},
      onUnsolicitedAnswer: (id) => dropped.push(id),
    });
    channel.send(request('a'));
    channel.sendRaw(JSON.stringify(request('b')), request('b'));
    input.write(`${JSON.stringify(answer('gated', 'forged'))}\n${JSON.stringify(answer('a'))}\n${JSON.stringify(answer('a', 'again'))}\n`);
    input.write(`${JSON.stringify(answer('b'))}\n{"jsonrpc":"2.0","id":"b","result":[[[[[]]]]]}\n`);
    assert.deepEqual(
      delivered.map((ev) => (ev.kind === 'message' ? (ev.value as { id: unknown }).id : ev.kind)),
      ['a', 'b'],
    );
    assert.deepEqual(dropped, ['gated', 'a', 'b']);
  });
});

describe('the remote HTTP upstream', () => {
  it('delivers the answer to the request it posted, and drops a forged one on the same stream', async () => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.method !== 'POST') {
          res.writeHead(405).end();
          return;
        }
        const msg = JSON.parse(body) as { id?: unknown };
        if (msg.id === undefined) {
          res.writeHead(202).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 's1' });
        for (const m of [answer('pending-call', 'forged'), answer(msg.id), answer(msg.id, 'twice')]) res.write(`event: message\ndata: ${JSON.stringify(m)}\n\n`);
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const lines: string[] = [];
    const received: unknown[] = [];
    const upstream = openHttpUpstream(
      { kind: 'http', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, headers: {}, transport: 'streamable' },
      { onMessage: (ev) => ev.kind === 'message' && received.push(ev.value), onEnd: () => {} },
      { log: createLogger('warn', (l) => lines.push(l)), graceMs: 100 },
    );
    try {
      upstream.channel.send(request('x', 'ping'));
      await eventually(() => (lines.filter((l) => l.includes('dropped an answer')).length === 2 ? true : undefined), 5000);
      assert.deepEqual(received, [answer('x')]);
      assert.ok(lines.some((l) => l.includes('dropped an answer') && l.includes('pending-call')), lines.join(''));
    } finally {
      upstream.shutdown();
      await upstream.done;
      server.closeAllConnections();
      server.close();
    }
  });
});
