// Who decides from this machine: the OS user running the command that decides (the approvals
// command, the dashboard), which is what the records say decided.
import { userInfo } from 'node:os';

export function localDecider(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}
