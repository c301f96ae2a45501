// The dashboard's front door, checked before anything is served. The listener's guards come
// first (transport/http-guard.ts): a Host that is not the bound address or a local name is DNS
// rebinding, a foreign Origin is another site's page. Then the token, when one is set. A POST
// must also come from the dashboard's own page: its Origin must be this very origin, since a
// decision is the one thing here that changes anything.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { OriginPolicy, bearerToken, hostAllowed, tokenMatches } from '../transport/http-guard.js';

export type Admission =
  | { ok: true }
  | { ok: false; status: 403 | 401; message: string }
  /** The page was opened with the right `?token=`: set the cookie and send it back to `/`. */
  | { ok: 'login'; cookie: string };

export interface GuardOptions {
  bind: string;
  port: number;
  token: string | undefined;
}

export class DashboardGuard {
  private readonly origins = new OriginPolicy([]);
  /** What the cookie holds: a secret of this process, not the token, so the browser never
   * stores the token and a restart ends every browser's session. */
  private readonly session = randomBytes(32).toString('hex');
  /** Per port: cookies are shared by every port of a host, and two dashboards must not
   * overwrite each other's. */
  readonly cookieName: string;

  constructor(private readonly opts: GuardOptions) {
    this.cookieName = `intercept_dashboard_${opts.port}`;
  }

  admit(req: IncomingMessage, url: URL): Admission {
    const host = req.headers.host;
    if (!hostAllowed(host, this.opts.bind)) return { ok: false, status: 403, message: `Forbidden: Host ${JSON.stringify(host ?? '')} is not allowed` };
    const origin = single(req.headers.origin);
    if (!this.origins.allows(origin)) return { ok: false, status: 403, message: `Forbidden: Origin ${JSON.stringify(origin)} is not allowed` };
    if (req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(origin, host)) {
      return { ok: false, status: 403, message: 'Forbidden: a change must come from the dashboard\'s own page (same Origin)' };
    }
    const token = this.opts.token;
    if (token === undefined) return { ok: true };
    const given = url.searchParams.get('token');
    if (given !== null && req.method === 'GET' && url.pathname === '/' && tokenMatches(given, token)) {
      return { ok: 'login', cookie: `${this.cookieName}=${this.session}; Path=/; HttpOnly; SameSite=Strict` };
    }
    if (tokenMatches(bearerToken(req), token)) return { ok: true };
    if (tokenMatches(cookie(req, this.cookieName), this.session)) return { ok: true };
    return { ok: false, status: 401, message: 'Unauthorized: this dashboard needs its token (Authorization: Bearer <token>, or open the page once as /?token=<token>)' };
  }
}

/** Whether `origin` is the origin of a page served by this host (the Host header as sent). */
function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined || host === undefined) return false;
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' && url.host === new URL(`http://${host}`).host;
  } catch {
    return false;
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The value of cookie `name`, if the request carries it. */
function cookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
