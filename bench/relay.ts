// The floor for one extra hop: a process that starts the server and copies bytes both ways
// without looking at them. What a stdio proxy costs above this is the proxy's own work.
//   relay <command> [args...]
import { spawn } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  process.stderr.write('usage: relay <command> [args...]\n');
  process.exit(2);
}
const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
process.stdin.pipe(child.stdin);
child.stdout.pipe(process.stdout);
// A client that goes away must not crash the relay; the server's exit ends it.
child.stdin.on('error', () => {});
process.stdout.on('error', () => {});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
