// Which server `intercept scan` and `intercept lock` list: a command after `--`, or a remote one
// given by `--upstream URL` (with `--header` and `--upstream-transport`). Both commands check
// their flags the same way and answer a bad combination with a usage error (exit status 2).
import { parseDuration } from '../policy/durations.js';
import { checkUpstreamUrl, parseHeaderFlags } from './proxy.js';

export type UpstreamTransportMode = 'auto' | 'streamable' | 'sse';

export type ServerTarget =
  | { kind: 'command'; command: string[] }
  | { kind: 'remote'; url: string; headers: Record<string, string>; transport: UpstreamTransportMode };

export interface ServerTargetFlags {
  upstream?: string;
  header?: string[];
  upstreamTransport?: UpstreamTransportMode;
}

/** The server the flags name, or a sentence saying why they name none. `verb` and `example`
 * make the sentence fit the command (`scan`, `intercept scan --lock -o intercept.lock`). */
export function serverTarget(
  flags: ServerTargetFlags,
  command: string[] | undefined,
  verb: string,
  example: string,
): ServerTarget | { error: string } {
  const hasCommand = command !== undefined && command.length > 0 && command[0] !== '';
  const headerFlags = flags.header ?? [];
  const transport = flags.upstreamTransport ?? 'auto';
  if (flags.upstream === undefined) {
    if (headerFlags.length > 0) return { error: '--header requires --upstream' };
    if (transport !== 'auto') return { error: '--upstream-transport requires --upstream' };
    if (!hasCommand) {
      return { error: `${verb} needs the server command after "--", e.g. ${example} -- npx -y @modelcontextprotocol/server-memory, or --upstream URL` };
    }
    return { kind: 'command', command: command! };
  }
  if (hasCommand) return { error: `cannot ${verb} both a server command (after --) and --upstream URL` };
  const bad = checkUpstreamUrl(flags.upstream);
  if (bad) return { error: bad };
  // fetch refuses such a URL anyway; saying so up front names the fix.
  const url = new URL(flags.upstream);
  if (url.username !== '' || url.password !== '') return { error: '--upstream cannot carry credentials (user:password@); send them with --header "Authorization: …"' };
  const headers = parseHeaderFlags(headerFlags);
  if (typeof headers === 'string') return { error: headers };
  return { kind: 'remote', url: flags.upstream, headers, transport };
}

/** `--timeout` in milliseconds ("30s", "2m", or a number of seconds), or a sentence saying why not. */
export function listTimeoutMs(text: string): number | { error: string } {
  const seconds = parseDuration(text) ?? (/^[0-9]+$/.test(text) ? Number(text) : undefined);
  if (seconds === undefined || seconds <= 0) {
    return { error: `--timeout must be a duration such as "30s", "2m" or a number of seconds, got ${JSON.stringify(text)}` };
  }
  return seconds * 1000;
}
