/**
 * A stand-in for a Confluent-compatible schema registry, answering the requests
 * `@kafkajs/confluent-schema-registry` makes with the bodies and status codes Confluent's REST API
 * documents (and Apicurio's ccompat v7 API returns): GET/PUT /config/{subject}, POST
 * /subjects/{subject}/versions, GET /schemas/ids/{id}. Used because no real registry could be run on
 * this machine (docs/avro.md says what was tried); ids are assigned per distinct schema text, as a
 * registry does, and an unknown id is a 404 with error_code 40403.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRegistry {
  readonly url: string;
  /** Requests seen, as "METHOD path" (to check caching: one fetch per id). */
  readonly requests: string[];
  close(): Promise<void>;
}

const CT = 'application/vnd.schemaregistry.v1+json';

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const ids = new Map<string, number>();
  const schemas = new Map<number, string>();
  const configs = new Map<string, string>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] as string;
      requests.push(`${req.method} ${path}`);
      const send = (status: number, data: unknown) => {
        res.writeHead(status, { 'content-type': CT });
        res.end(JSON.stringify(data));
      };
      let m = /^\/config\/([^/]+)$/.exec(path);
      if (m) {
        const subject = decodeURIComponent(m[1] as string);
        if (req.method === 'PUT') {
          const { compatibility } = JSON.parse(body) as { compatibility: string };
          configs.set(subject, compatibility);
          return send(200, { compatibility });
        }
        const level = configs.get(subject);
        if (level === undefined) {
          return send(404, {
            error_code: 40408,
            message: `Subject '${subject}' does not have subject-level compatibility configured`,
          });
        }
        return send(200, { compatibilityLevel: level });
      }
      m = /^\/subjects\/([^/]+)\/versions$/.exec(path);
      if (m && req.method === 'POST') {
        const { schema } = JSON.parse(body) as { schema: string };
        // Registries identify a schema by its canonical form; re-serialising stands in for that here.
        const canonical = JSON.stringify(JSON.parse(schema));
        let id = ids.get(canonical);
        if (id === undefined) {
          id = ids.size + 1;
          ids.set(canonical, id);
          schemas.set(id, schema);
        }
        return send(200, { id });
      }
      m = /^\/schemas\/ids\/(\d+)$/.exec(path);
      if (m && req.method === 'GET') {
        const schema = schemas.get(Number(m[1]));
        if (schema === undefined) return send(404, { error_code: 40403, message: 'Schema not found' });
        return send(200, { schema });
      }
      send(404, { error_code: 404, message: 'HTTP 404 Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}
