/** `groupsync start --port`: `/healthz` for liveness probes and `/metrics` for Prometheus. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface HealthSource {
  /** False once a shutdown began: `/healthz` answers 503 so a load balancer stops routing here. */
  readonly healthy: boolean;
  /** The body of `/healthz`. */
  health(): unknown;
  /** The body of `/metrics`, in Prometheus text format. */
  metrics(): string;
}

export interface HealthServer {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(source: HealthSource, port: number, host: string): Promise<HealthServer> {
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
    } else if (path === "/healthz") {
      const body = JSON.stringify(source.health());
      response.writeHead(source.healthy ? 200 : 503, { "content-type": "application/json" }).end(body);
    } else if (path === "/metrics") {
      response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(source.metrics());
    } else {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz or /metrics\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
