// Approval ids: short enough to type, unguessable enough to act as a capability in a URL, and
// made only of characters that need no quoting in a shell or a URL.
import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'; // RFC 4648 base32, lower case
const ID_PATTERN = /^apr_[a-z2-7]{16}$/;

/** `apr_` + 16 base32 characters: 80 random bits. */
export function newApprovalId(): string {
  const bytes = randomBytes(10);
  let out = 'apr_';
  // 10 bytes are 80 bits: exactly 16 groups of 5.
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(value >>> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

/** Whether `text` has the form of an approval id (for checking input before a lookup). */
export function isApprovalId(text: string): boolean {
  return ID_PATTERN.test(text);
}
