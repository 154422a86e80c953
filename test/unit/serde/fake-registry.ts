/**
 * A stand-in for a Confluent-compatible schema registry, answering the requests
 * `@kafkajs/confluent-schema-registry` (3.9) makes with the bodies and status codes Confluent's REST API
 * documents (and Apicurio's ccompat v7 API returns):
 *
 * - `GET /config/{subject}` → `{"compatibilityLevel": L}`, or 404 `error_code` 40408 when the subject has
 *   no subject-level setting (the client then registers and sets it with `PUT`);
 * - `PUT /config/{subject}` `{"compatibility": L}` → the same body back;
 * - `POST /subjects/{subject}/versions` `{"schema": text}` → `{"id": n}`: one id per distinct schema
 *   (the same schema under another subject gets the same id), 422 `error_code` 42201 when the text is
 *   not a schema;
 * - `GET /schemas/ids/{id}` → `{"schema": text}` (Avro: no `schemaType`), 404 `error_code` 40403;
 * - with `auth`, 401 `error_code` 401 unless the request carries those basic-auth credentials;
 * - `unavailable = true`: 500 `error_code` 50001 (the registry's backend store failing) for everything.
 *
 * What it does not do: compatibility checks between versions of a subject (every new text is accepted)
 * and the endpoints the client never calls. Used where no real registry runs; test/helpers/avro-registry.ts
 * prefers one named by SCHEMA_REGISTRY_URL.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRegistry {
  url: string;
  /** While true, every request is answered 500 (error_code 50001), as a registry whose store is down. */
  unavailable: boolean;
  /** Requests seen, as "METHOD path" (to check caching: one fetch per id). */
  readonly requests: string[];
  close(): Promise<void>;
}

const CT = 'application/vnd.schemaregistry.v1+json';

export interface FakeRegistryOptions {
  /** Basic-auth credentials every request must carry. */
  readonly auth?: { readonly username: string; readonly password: string };
}

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const ids = new Map<string, number>();
  const schemas = new Map<number, string>();
  const configs = new Map<string, string>();
  const requests: string[] = [];
  const fake: FakeRegistry = {
    url: '',
    unavailable: false,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
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
      if (fake.unavailable)
        return send(500, { error_code: 50001, message: 'Error in the backend data store' });
      if (options.auth !== undefined) {
        const expected = `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
        if (req.headers.authorization !== expected)
          return send(401, { error_code: 401, message: 'Unauthorized' });
      }
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
        let canonical: string;
        try {
          // Registries identify a schema by its canonical form; re-serialising stands in for that here.
          canonical = JSON.stringify(JSON.parse(schema));
        } catch (e) {
          return send(422, { error_code: 42201, message: `Invalid schema: ${(e as Error).message}` });
        }
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
        if (schema === undefined) {
          return send(404, { error_code: 40403, message: `Schema ${m[1]} not found` });
        }
        return send(200, { schema });
      }
      send(404, { error_code: 404, message: 'HTTP 404 Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}`;
  return fake;
}
