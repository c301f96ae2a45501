// The metrics endpoint: a plain node:http server answering GET /metrics with the registry's
// exposition text. It never reads a request body, and closing it cuts any connection a scraper
// keeps alive, so shutting the proxy down is never held up by a scraper.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from './metrics.js';

export interface MetricsServer {
  /** Where the metrics are: `http://<bind>:<port>/metrics`. */
  url: string;
  /** The port listened on (the one picked, when asked for 0). */
  port: number;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  port: number;
  bind: string;
  log: Logger;
}

const ALLOW = 'GET, HEAD';
const PATHS = new Set(['/', '/metrics']);

/** `http://<host>:<port>/metrics`, an IPv6 address in brackets. */
export function metricsUrl(bind: string, port: number): string {
  const host = bind.includes(':') && !bind.startsWith('[') ? `[${bind}]` : bind;
  return `http://${host}:${port}/metrics`;
}

function answer(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export async function serveMetrics(metrics: Metrics, opts: MetricsServerOptions): Promise<MetricsServer> {
  const { log } = opts;
  const where = metricsUrl(opts.bind, opts.port).replace(/^http:\/\/|\/metrics$/g, '');
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error(`cannot serve metrics on ${where}: the port must be an integer from 0 to 65535`);
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (!PATHS.has(path)) return answer(req, res, 404, 'text/plain; charset=utf-8', 'not found: the metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // Whatever body came with it is not read: the connection closes after the answer.
      return answer(req, res, 405, 'text/plain; charset=utf-8', `method not allowed: use ${ALLOW}\n`, { Allow: ALLOW, Connection: 'close' });
    }
    if (path === '/') return answer(req, res, 200, 'text/plain; charset=utf-8', 'Intercept: Prometheus metrics at /metrics\n');
    metrics.render().then(
      ({ contentType, body }) => answer(req, res, 200, contentType, body),
      (err: unknown) => {
        log.warn('cannot render the metrics', { error: err instanceof Error ? err.message : String(err) });
        answer(req, res, 500, 'text/plain; charset=utf-8', 'the metrics could not be rendered\n');
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new Error(`cannot serve metrics on ${where}: ${err.code === 'EADDRINUSE' ? 'the address is in use' : err.message}`));
    };
    server.once('error', onError);
    try {
      server.listen(opts.port, opts.bind, () => {
        server.off('error', onError);
        resolve();
      });
    } catch (err) {
      onError(err as NodeJS.ErrnoException);
    }
  });
  // After listening, a server error (rare: accept failing) is logged rather than crashing.
  server.on('error', (err) => log.warn('metrics server error', { error: err.message }));

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  const url = metricsUrl(opts.bind, port);
  log.info('serving metrics', { url });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would otherwise hold close() until the scraper drops them.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
