import { RedisConnectionError, RedisUrlError, connectRedis, parseRedisUrl, redactRedisUrl } from '../runtime/core/redis-connection';
import { type TestRedisServer, startRedisServer } from './helpers/redis-server';

describe('Redis URLs', () => {
  it('parses TCP, TLS, unix-socket and bare-path forms', () => {
    expect(parseRedisUrl('redis://localhost').options).toMatchObject({ host: 'localhost', port: 6379, db: 0 });
    expect(parseRedisUrl('redis://u:p%40ss@10.0.0.2:7000/3').options).toMatchObject({ host: '10.0.0.2', port: 7000, db: 3, username: 'u', password: 'p@ss' });
    expect(parseRedisUrl('rediss://:secret@h:6380').options).toMatchObject({ host: 'h', port: 6380, password: 'secret', tls: { servername: 'h' } });
    expect(parseRedisUrl('unix:///tmp/r.sock?db=2').options).toMatchObject({ path: '/tmp/r.sock', db: 2 });
    expect(parseRedisUrl('/tmp/r.sock').options).toMatchObject({ path: '/tmp/r.sock' });
  });

  it('never shows a password', () => {
    expect(redactRedisUrl('redis://user:hunter2@host:6379')).toBe('redis://user:***@host:6379');
    expect(redactRedisUrl('rediss://:hunter2@host')).toBe('rediss://:***@host');
    expect(parseRedisUrl('redis://:hunter2@host').display).not.toContain('hunter2');
    expect(() => parseRedisUrl('http://:hunter2@host')).toThrow(RedisUrlError);
    try {
      parseRedisUrl('ftp://:hunter2@host');
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2');
      expect((error as Error).message).toMatch(/unknown scheme 'ftp:'/);
    }
    expect(() => parseRedisUrl('redis://host/notanumber')).toThrow(/database must be a whole number/);
  });
});

describe('connectRedis', () => {
  let server: TestRedisServer;
  beforeAll(() => {
    server = startRedisServer();
  });
  afterAll(() => server.stop());

  it('connects to a real server on a unix socket', async () => {
    const client = await connectRedis(server.url, { purpose: 'test' });
    expect(await client.ping()).toBe('PONG');
    client.disconnect();
  });

  it('fails fast and clearly when nothing listens, naming the purpose and the URL without its password', async () => {
    const started = Date.now();
    await expect(connectRedis('redis://:hunter2@127.0.0.1:1', { purpose: 'run queue', connectTimeoutMs: 1000 })).rejects.toThrow(RedisConnectionError);
    try {
      await connectRedis('redis://:hunter2@127.0.0.1:1', { purpose: 'run queue', connectTimeoutMs: 1000 });
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toMatch(/cannot reach Redis for the run queue at redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
      expect(message).toMatch(/redis-server/);
      expect(message).not.toContain('hunter2');
    }
    expect(Date.now() - started).toBeLessThan(8000);
    await expect(connectRedis(`unix://${server.dir}/missing.sock`, { purpose: 'rollout broker', connectTimeoutMs: 1000 })).rejects.toThrow(/rollout broker.*missing\.sock/);
  });
});
