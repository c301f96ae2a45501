// The dashboard's front door, over real HTTP: the listener's Host and Origin guards (DNS
// rebinding, another site's page), same-origin POSTs, the token (bearer, or a `?token=` page load
// traded for an HttpOnly cookie), bounded bodies, the headers that keep the page's data inert,
// and the refusal to listen beyond loopback without a token.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runDashboard } from '../../src/cli/dashboard.js';
import { DashboardRefused, startDashboard, type Dashboard } from '../../src/dashboard/server.js';
import { silentLogger } from '../../src/log.js';
import { ask } from '../support/dashboard.js';
import { makeTempDir, type TempDir } from '../support/temp.js';
import { capture } from '../support/trail-writer.js';

const noTrail = { emit() {} };
const ID = 'apr_aaaaaaaaaaaaaaaa';

describe('dashboard guards', () => {
  let dir: TempDir;
  let open: Dashboard;
  let locked: Dashboard;
  const TOKEN = 'correct-horse-battery-staple';

  before(async () => {
    dir = await makeTempDir('intercept-dashboard-');
    open = await startDashboard({ bind: '127.0.0.1', port: 0, eventsDir: dir.file('events'), trail: noTrail, log: silentLogger });
    locked = await startDashboard({ bind: '127.0.0.1', port: 0, token: TOKEN, eventsDir: dir.file('events'), trail: noTrail, log: silentLogger });
  });
  after(async () => {
    await open?.close();
    await locked?.close();
    await dir?.cleanup();
  });

  const hostOf = (d: Dashboard) => new URL(d.url).host;

  it('serves the page, its script and its style as files, under a strict Content-Security-Policy', async () => {
    const page = await ask(open.url);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.match(page.text, /<script src="\/dashboard\.js" defer><\/script>/);
    assert.doesNotMatch(page.text.replace(/<script src="[^"]+" defer><\/script>/, ''), /<script/i, 'no inline script');

    const script = await ask(`${open.url}dashboard.js`);
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /^text\/javascript/);
    assert.doesNotMatch(script.text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, 'the page never parses data as HTML');
    assert.match(String((await ask(`${open.url}dashboard.css`)).headers['content-type']), /^text\/css/);
    assert.equal((await ask(`${open.url}%2e%2e/src/cli/main.ts`)).status, 404);

    const api = await ask(`${open.url}api/summary`);
    assert.equal(api.status, 200);
    assert.equal(api.headers['cache-control'], 'no-store');
    assert.equal(api.headers['x-content-type-options'], 'nosniff');
  });

  it('refuses a foreign Origin with 403, and lets the page itself in', async () => {
    for (const origin of ['http://evil.example', 'http://localhost.evil.example', 'null']) {
      const answer = await ask(`${open.url}api/summary`, { headers: { Origin: origin } });
      assert.equal(answer.status, 403, origin);
      assert.match(String(answer.json?.error), /Origin/);
    }
    assert.equal((await ask(`${open.url}api/summary`, { headers: { Origin: `http://${hostOf(open)}` } })).status, 200);
  });

  it('refuses a Host that is not the bound address or a local name with 403 (DNS rebinding)', async () => {
    const port = new URL(open.url).port;
    const rebound = await ask(open.url, { headers: { Host: `evil.example:${port}` } });
    assert.equal(rebound.status, 403);
    assert.match(rebound.text, /Host/);
    assert.equal((await ask(`${open.url}api/approvals`, { headers: { Host: `evil.example:${port}` } })).status, 403);
    assert.equal((await ask(open.url, { headers: { Host: `localhost:${port}` } })).status, 200);
  });

  it('refuses a POST whose Origin is missing or another origin, even another local port', async () => {
    const url = `${open.url}api/approvals/${ID}/approve`;
    const json = { 'Content-Type': 'application/json' };
    const port = Number(new URL(open.url).port);
    for (const headers of [json, { ...json, Origin: `http://127.0.0.1:${port === 65535 ? 1 : port + 1}` }, { ...json, Origin: 'http://localhost:1' }]) {
      const answer = await ask(url, { method: 'POST', headers, body: '{}' });
      assert.equal(answer.status, 403, JSON.stringify(headers));
      assert.match(String(answer.json?.error), /same Origin/);
    }
    // Its own origin passes the door (and finds no store: this dashboard has no -c).
    const own = await ask(url, { method: 'POST', headers: { ...json, Origin: `http://${hostOf(open)}` }, body: '{}' });
    assert.equal(own.status, 404);
  });

  it('bounds a POST body and wants it as JSON', async () => {
    const headers = { 'Content-Type': 'application/json', Origin: `http://${hostOf(open)}` };
    const url = `${open.url}api/approvals/${ID}/deny`;
    assert.equal((await ask(url, { method: 'POST', headers, body: JSON.stringify({ reason: 'x'.repeat(20_000) }) })).status, 413);
    assert.equal((await ask(url, { method: 'POST', headers: { ...headers, 'Content-Type': 'text/plain' }, body: '{"reason":"x"}' })).status, 415);
    assert.equal((await ask(url, { method: 'POST', headers, body: 'not json' })).status, 400);
  });

  it('with a token, wants it on every request: a bearer, or the cookie a ?token= page load gave', async () => {
    for (const path of ['', 'dashboard.js', 'api/summary', 'api/events', 'api/approvals']) {
      const answer = await ask(`${locked.url}${path}`);
      assert.equal(answer.status, 401, path);
      assert.equal(answer.headers['www-authenticate'], 'Bearer');
    }
    assert.equal((await ask(`${locked.url}api/summary`, { headers: { Authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await ask(`${locked.url}api/summary`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
    // The query token opens the page only, and is traded for a cookie at once.
    assert.equal((await ask(`${locked.url}api/summary?token=${TOKEN}`)).status, 401);
    assert.equal((await ask(`${locked.url}?token=wrong`)).status, 401);
    const login = await ask(`${locked.url}?token=${TOKEN}`);
    assert.equal(login.status, 303);
    assert.equal(login.headers.location, '/');
    const setCookie = String(login.headers['set-cookie']);
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Strict/);
    assert.ok(!setCookie.includes(TOKEN), 'the cookie does not hold the token');
    const cookie = setCookie.split(';')[0]!;
    assert.equal((await ask(locked.url, { headers: { Cookie: cookie } })).status, 200);
    assert.equal((await ask(`${locked.url}api/approvals`, { headers: { Cookie: `a=b; ${cookie}` } })).status, 200);
    assert.equal((await ask(`${locked.url}api/approvals`, { headers: { Cookie: `${cookie.split('=')[0]}=forged` } })).status, 401);
    // The guards still come first.
    assert.equal((await ask(`${locked.url}api/summary`, { headers: { Authorization: `Bearer ${TOKEN}`, Origin: 'http://evil.example' } })).status, 403);
  });

  it('refuses to listen beyond loopback without a token, and says why', async () => {
    await assert.rejects(
      startDashboard({ bind: '0.0.0.0', port: 0, eventsDir: dir.file('events'), trail: noTrail, log: silentLogger }),
      (err: unknown) => err instanceof DashboardRefused && /--token/.test(err.message),
    );
    const run = await capture(() => runDashboard({ bind: '0.0.0.0', port: '0', eventsDir: dir.file('events') }));
    assert.equal(run.code, 2);
    assert.match(run.stderr, /intercept dashboard: --bind 0\.0\.0\.0 can be reached from other machines: set --token/);
    const bad = await capture(() => runDashboard({ port: 'eighty', eventsDir: dir.file('events') }));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--port must be a port number/);
    const storeWithoutPolicy = await capture(() => runDashboard({ port: '0', stateDir: dir.file('state'), eventsDir: dir.file('events') }));
    assert.equal(storeWithoutPolicy.code, 2);
    assert.match(storeWithoutPolicy.stderr, /-c/);
  });
});
