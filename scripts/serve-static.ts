/**
 * A tiny static file server for the browser build (`dist/browser` by default), on 127.0.0.1:
 *
 *   npx tsx scripts/serve-static.ts [DIR] [--port N]     (port 0, the default, picks a free one)
 *
 * It sends the MIME types browsers insist on (`application/wasm` for streaming compilation,
 * `text/javascript` for modules) and the COOP/COEP headers that make the page cross-origin
 * isolated, so onnxruntime-web may use WebAssembly threads (SharedArrayBuffer). Files outside DIR
 * are never served.
 */

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** A running server. */
export interface StaticServer {
  /** Base URL, e.g. `http://127.0.0.1:40123/` (ends in `/`). */
  url: string;
  close(): Promise<void>;
}

/** Serves `root` on 127.0.0.1 (`port` 0: a free port). */
export async function serveStatic(root: string, port = 0): Promise<StaticServer> {
  const base = resolve(root);
  const server = createServer((req, res) => {
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cache-Control': 'no-store',
    };
    const fail = (code: number, text: string) => {
      res.writeHead(code, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(text + '\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
    let path: string;
    try {
      path = decodeURIComponent(new URL(`http://x${req.url ?? '/'}`).pathname);
    } catch {
      return fail(400, 'bad request');
    }
    if (path.endsWith('/')) path += 'index.html';
    const file = resolve(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) return fail(403, 'forbidden');
    stat(file).then(
      (st) => {
        if (!st.isFile()) return fail(404, 'not found');
        res.writeHead(200, {
          ...headers,
          'Content-Type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
          'Content-Length': st.size,
        });
        if (req.method === 'HEAD') return res.end();
        createReadStream(file)
          .on('error', () => res.destroy())
          .pipe(res);
      },
      () => fail(404, 'not found'),
    );
  });
  await new Promise<void>((ok, ko) => {
    server.once('error', ko);
    server.listen(port, '127.0.0.1', () => ok());
  });
  const { port: actual } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actual}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

async function main(argv: string[]): Promise<void> {
  let dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'browser');
  let port = 0;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') port = Number(argv[++i]);
    else if (argv[i]!.startsWith('-'))
      throw new Error(`unknown option ${argv[i]}; usage: serve-static [DIR] [--port N]`);
    else dir = argv[i]!;
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('bad --port');
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory())
    throw new Error(`${dir} is not a directory; build it first: npx tsx scripts/build-browser.ts`);
  const s = await serveStatic(dir, port);
  console.log(`serving ${resolve(dir)} at ${s.url} (Ctrl-C to stop)`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`serve-static: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
