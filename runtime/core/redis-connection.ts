import { Redis, type RedisOptions } from 'ioredis';

/*
 * The one way troupe reaches Redis (run queue, remote rollouts): a URL the user gives with
 * `--queue` or `--broker`, parsed here so every command accepts the same forms, never prints
 * a password, and fails with a sentence that says where it tried and how to start a server.
 *
 * Accepted forms:
 *   redis://[user:password@]host[:port][/db]    TCP (port 6379 by default)
 *   rediss://…                                    the same over TLS
 *   unix:///path/to/redis.sock[?db=N]             a unix socket (also redis+unix://)
 *   /path/to/redis.sock                           a bare socket path
 */

export class RedisUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUrlError';
  }
}

export interface ParsedRedisUrl {
  /** Options for ioredis (host/port or path, db, credentials, tls). */
  options: RedisOptions;
  /** The URL with its password replaced by `***`: the only form that is ever logged. */
  display: string;
}

/** `redis://user:***@host:6379/0`: the URL as it may appear in logs, errors and files. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
    const colon = auth.indexOf(':');
    return colon < 0 ? `${scheme}***@` : `${scheme}${auth.slice(0, colon)}:***@`;
  });
}

function dbOf(text: string | null | undefined, url: string): number {
  if (text === null || text === undefined || text === '') return 0;
  if (!/^\d+$/.test(text)) throw new RedisUrlError(`Redis URL ${redactRedisUrl(url)}: the database must be a whole number, got '${text}'`);
  return Number(text);
}

/** Parses a Redis URL (see the header); errors name the URL (password hidden) and the accepted forms. */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  const raw = url.trim();
  const display = redactRedisUrl(raw);
  const forms = 'expected redis://[user:password@]host[:port][/db], rediss://… (TLS), unix:///path/to/redis.sock or a socket path';
  if (raw === '') throw new RedisUrlError(`empty Redis URL: ${forms}`);
  if (raw.startsWith('/')) return { options: { path: raw }, display };
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new RedisUrlError(`not a Redis URL: '${display}'; ${forms}`);
  }
  const auth = {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
  };
  switch (parsed.protocol) {
    case 'unix:':
    case 'redis+unix:': {
      if (!parsed.pathname) throw new RedisUrlError(`Redis URL ${display}: no socket path; ${forms}`);
      return { options: { path: decodeURIComponent(parsed.pathname), db: dbOf(parsed.searchParams.get('db'), raw), ...auth }, display };
    }
    case 'redis:':
    case 'rediss:': {
      if (!parsed.hostname) throw new RedisUrlError(`Redis URL ${display}: no host; ${forms}`);
      const port = parsed.port === '' ? 6379 : Number(parsed.port);
      const db = dbOf(parsed.pathname.replace(/^\//, ''), raw);
      const host = parsed.hostname.replace(/^\[|\]$/g, '');
      return { options: { host, port, db, ...auth, ...(parsed.protocol === 'rediss:' ? { tls: { servername: host } } : {}) }, display };
    }
    default:
      throw new RedisUrlError(`Redis URL ${display}: unknown scheme '${parsed.protocol}'; ${forms}`);
  }
}

/** How to start a server, for error messages. */
export const START_REDIS_HINT = 'start one with `redis-server` (Debian: apt-get install redis-server), or pass the URL of a running server';

export interface ConnectRedisOptions {
  /** What the connection is for, named in errors (e.g. `run queue`, `rollout broker`). */
  purpose: string;
  /** Give up connecting after this long (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * BullMQ's blocking connections need `null` (retry commands forever while reconnecting);
   * everything else fails a command after this many reconnection attempts (default 1).
   */
  maxRetriesPerRequest?: number | null;
  /** After the first connection, how long to keep retrying a lost one before commands fail (default 10 s). */
  reconnectForMs?: number;
}

/**
 * Connects to Redis and resolves once the server answers, or rejects with an error naming the
 * URL (password hidden), the purpose and what went wrong — never a hang, never a stack from
 * inside ioredis. The client retries a lost connection for `reconnectForMs`, then gives up so
 * callers see a clear failure instead of waiting forever.
 */
export async function connectRedis(url: string, options: ConnectRedisOptions): Promise<Redis> {
  const { options: base, display } = parseRedisUrl(url);
  const connectTimeout = options.connectTimeoutMs ?? 5000;
  const reconnectFor = options.reconnectForMs ?? 10000;
  let lostSince: number | null = null;
  const client = new Redis({
    ...base,
    lazyConnect: true,
    connectTimeout,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 1 : options.maxRetriesPerRequest,
    enableOfflineQueue: true,
    retryStrategy: () => {
      lostSince ??= Date.now();
      if (Date.now() - lostSince > reconnectFor) return null;
      return 200;
    },
  });
  client.on('ready', () => {
    lostSince = null;
  });
  // Errors surface through the commands that fail; an unhandled 'error' event would crash the
  // process. The last one says why a first connection failed (ECONNREFUSED, ENOENT, NOAUTH…),
  // where the rejected connect() only says "Connection is closed".
  let lastError: unknown;
  client.on('error', (error: unknown) => {
    lastError = error;
  });
  try {
    await withTimeout(client.connect(), connectTimeout + 500, `timed out after ${connectTimeout} ms`);
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new RedisConnectionError(`cannot reach Redis for the ${options.purpose} at ${display}: ${describeRedisError(lastError ?? error)}; ${START_REDIS_HINT}`);
  }
  return client;
}

export class RedisConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisConnectionError';
  }
}

/** A Redis failure as one short phrase (the message of ECONNREFUSED, ENOENT, NOAUTH, …) without any password. */
export function describeRedisError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return redactRedisUrl(text).replace(/\s+/g, ' ').replace(/\.$/, '').trim() || 'unknown error';
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
