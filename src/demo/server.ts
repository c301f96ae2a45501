// A small Twilio-like MCP server for the built-in demo. It keeps its state in memory so that every
// result is real (a created conversation can be fetched, messaged and deleted), but it talks to
// nothing outside this process. Run it as `node dist/demo/server.js`: it speaks MCP over stdio.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

interface Conversation {
  sid: string;
  friendlyName: string | undefined;
  created: string;
  messages: Message[];
}

interface Message {
  sid: string;
  author: string;
  body: string;
}

interface Flow {
  sid: string;
  friendlyName: string;
}

/** Every tool the server offers, in registration order (a policy may hide some of them). */
export const DEMO_TOOL_NAMES = [
  'create_conversation',
  'send_conversation_message',
  'create_execution',
  'list_conversations',
  'fetch_conversation',
  'list_conversation_messages',
  'delete_conversation',
  'delete_flow',
] as const;

/** In-memory stand-in for a Twilio account. SIDs are short and sequential so output stays readable. */
class DemoAccount {
  readonly conversations = new Map<string, Conversation>();
  readonly flows = new Map<string, Flow>();
  private readonly next = { CH: 1, IM: 1, FN: 1 };

  constructor(private readonly now: () => Date = () => new Date()) {
    for (const flow of [
      { sid: 'FW0001', friendlyName: 'Appointment reminder' },
      { sid: 'FW0002', friendlyName: 'Order status IVR' },
    ]) {
      this.flows.set(flow.sid, flow);
    }
  }

  sid(prefix: keyof DemoAccount['next']): string {
    const n = this.next[prefix]++;
    return `${prefix}${String(n).padStart(4, '0')}`;
  }

  timestamp(): string {
    return this.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
}

const text = (message: string): CallToolResult => ({ content: [{ type: 'text', text: message }] });
const failure = (message: string): CallToolResult => ({ ...text(message), isError: true });
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const label = (c: Conversation): string => (c.friendlyName === undefined ? c.sid : `${c.sid} ("${c.friendlyName}")`);

const conversationSid = z
  .string()
  .describe('The SID of the Conversation resource, e.g. CH0001');

/** Builds the demo server with fresh state. Exported so tests and tools can run it in-process. */
export function createDemoServer(): McpServer {
  const account = new DemoAccount();
  const server = new McpServer(
    { name: 'twilio-demo', version: '1.0.0' },
    { instructions: 'A simulated Twilio account for the Intercept demo. Nothing leaves this process.' },
  );

  const noConversation = (sid: string): CallToolResult => failure(`Conversation ${sid} not found`);

  server.registerTool(
    'create_conversation',
    {
      title: 'Create conversation',
      description: 'Create a new conversation. Creates a new messaging channel that participants and messages can be added to.',
      inputSchema: {
        friendly_name: z.string().optional().describe('A human-readable name for the conversation, up to 256 characters'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    ({ friendly_name }) => {
      const conversation: Conversation = {
        sid: account.sid('CH'),
        friendlyName: friendly_name,
        created: account.timestamp(),
        messages: [],
      };
      account.conversations.set(conversation.sid, conversation);
      return text(`Created conversation ${label(conversation)}`);
    },
  );

  server.registerTool(
    'send_conversation_message',
    {
      title: 'Send conversation message',
      description: 'Send a message in a conversation. The message is delivered to every participant as the authenticated user, or as the given author.',
      inputSchema: {
        conversation_sid: conversationSid,
        body: z.string().describe('The content of the message, up to 1,600 characters'),
        author: z.string().optional().describe('The identity of the message author; defaults to "system"'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    ({ conversation_sid, body, author }) => {
      const conversation = account.conversations.get(conversation_sid);
      if (conversation === undefined) return noConversation(conversation_sid);
      const message: Message = { sid: account.sid('IM'), author: author ?? 'system', body };
      conversation.messages.push(message);
      return text(`Sent message ${message.sid} to ${conversation.sid} (${plural(body.length, 'character')})`);
    },
  );

  server.registerTool(
    'create_execution',
    {
      title: 'Create execution',
      description: 'Trigger a Studio flow execution. Starts the automated workflow for one contact, which may call or message them.',
      inputSchema: {
        flow_sid: z.string().describe('The SID of the Studio Flow to execute, e.g. FW0001'),
        to: z.string().describe("The contact's phone number, in E.164 format, e.g. +15558675310"),
        from: z.string().describe('The Twilio phone number to send messages or make calls from, in E.164 format'),
        parameters: z
          .record(z.string(), z.unknown())
          .optional()
          .describe('JSON data made available to the flow as flow.data'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    ({ flow_sid, to, from }) => {
      const flow = account.flows.get(flow_sid);
      if (flow === undefined) return failure(`Flow ${flow_sid} not found`);
      return text(`Started execution ${account.sid('FN')} of flow ${flow.sid} ("${flow.friendlyName}") from ${from} to ${to}`);
    },
  );

  server.registerTool(
    'list_conversations',
    {
      title: 'List conversations',
      description: 'List the conversations in the account, oldest first.',
      inputSchema: {},
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    () => {
      const all = [...account.conversations.values()];
      const lines = all.map((c) => `${label(c)}, ${plural(c.messages.length, 'message')}, created ${c.created}`);
      return text([`${plural(all.length, 'conversation')}`, ...lines].join('\n'));
    },
  );

  server.registerTool(
    'fetch_conversation',
    {
      title: 'Fetch conversation',
      description: 'Fetch a conversation by its SID.',
      inputSchema: { conversation_sid: conversationSid },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    ({ conversation_sid }) => {
      const conversation = account.conversations.get(conversation_sid);
      if (conversation === undefined) return noConversation(conversation_sid);
      return text(
        `Conversation ${label(conversation)}, ${plural(conversation.messages.length, 'message')}, created ${conversation.created}`,
      );
    },
  );

  server.registerTool(
    'list_conversation_messages',
    {
      title: 'List conversation messages',
      description: 'List the messages in a conversation, oldest first.',
      inputSchema: { conversation_sid: conversationSid },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    ({ conversation_sid }) => {
      const conversation = account.conversations.get(conversation_sid);
      if (conversation === undefined) return noConversation(conversation_sid);
      const lines = conversation.messages.map((m) => `${m.sid} from ${m.author}: ${m.body}`);
      return text([`${plural(lines.length, 'message')} in ${conversation.sid}`, ...lines].join('\n'));
    },
  );

  server.registerTool(
    'delete_conversation',
    {
      title: 'Delete conversation',
      description: 'Delete a conversation and all of its messages. This cannot be undone.',
      inputSchema: { conversation_sid: conversationSid },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    ({ conversation_sid }) => {
      const conversation = account.conversations.get(conversation_sid);
      if (conversation === undefined) return noConversation(conversation_sid);
      account.conversations.delete(conversation.sid);
      return text(`Deleted conversation ${label(conversation)} and ${plural(conversation.messages.length, 'message')}`);
    },
  );

  server.registerTool(
    'delete_flow',
    {
      title: 'Delete flow',
      description: 'Delete a Studio flow and its revisions. Executions in progress are ended. This cannot be undone.',
      inputSchema: { flow_sid: z.string().describe('The SID of the Studio Flow to delete, e.g. FW0001') },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    ({ flow_sid }) => {
      const flow = account.flows.get(flow_sid);
      if (flow === undefined) return failure(`Flow ${flow_sid} not found`);
      account.flows.delete(flow_sid);
      return text(`Deleted flow ${flow.sid} ("${flow.friendlyName}")`);
    },
  );

  return server;
}

/** True when this module is the process's entry point rather than an import. */
function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const server = createDemoServer();
  await server.connect(new StdioServerTransport());
  // Exit when the client goes away, so the demo leaves no stray processes.
  process.stdin.on('end', () => void server.close().finally(() => process.exit(0)));
}
