/** The HTTP plumbing the local contract receivers share (tests and the demo): a loopback server, bodies, replies. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface LocalServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Aborted when the server closes, to cut scripted delays short. */
  readonly closing: AbortSignal;
  close(): Promise<void>;
}

/** Starts a loopback server; a handler that throws destroys its connection. */
export async function startLocalServer(
  handle: (request: IncomingMessage, response: ServerResponse) => Promise<void>,
): Promise<LocalServer> {
  const closing = new AbortController();
  const server = createServer((request, response) => {
    response.on("error", () => undefined);
    handle(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    closing: closing.signal,
    close: async () => {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Reads the body; `body` is undefined when it exceeds `limit` (the rest is read and dropped). */
export async function readBody(request: IncomingMessage, limit: number): Promise<{ body?: string; bytes: number }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes <= limit) chunks.push(chunk);
  }
  return bytes > limit ? { bytes } : { body: Buffer.concat(chunks).toString("utf8"), bytes };
}

/** Answers with JSON, or with plain text when `payload` is a string. */
export function reply(
  response: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  if (response.destroyed || response.headersSent) return;
  const text = typeof payload === "string" ? payload : JSON.stringify(payload);
  response.writeHead(status, {
    "content-type": typeof payload === "string" ? "text/plain; charset=utf-8" : "application/json",
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  response.end(text);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
