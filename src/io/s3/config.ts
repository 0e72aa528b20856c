/**
 * Where S3 requests go and who signs them, from the standard AWS
 * environment: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_REGION` /
 * `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
 * `AWS_SESSION_TOKEN`, then the shared files (`~/.aws/credentials` and
 * `~/.aws/config`, or `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`)
 * for the profile `AWS_PROFILE` (default `default`). The environment wins
 * over the files, as in the AWS CLI.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

import { InvalidArgumentError } from '../../core/errors.js';
import { readFile } from '../fs-calls.js';

/** Keys that sign requests. */
export interface S3Credentials {
  /** `AWS_ACCESS_KEY_ID`. */
  readonly accessKeyId: string;
  /** `AWS_SECRET_ACCESS_KEY`. */
  readonly secretAccessKey: string;
  /** `AWS_SESSION_TOKEN`, for temporary credentials. */
  readonly sessionToken?: string | undefined;
}

/** Endpoint, region and credentials of an S3 service. */
export interface S3Config {
  /** Base URL of the service (`https://s3.us-east-1.amazonaws.com`, or a custom endpoint). */
  readonly endpoint: URL;
  /** Signing region. */
  readonly region: string;
  /** Bucket in the path (`/bucket/key`) rather than in the host name: custom endpoints. */
  readonly pathStyle: boolean;
  /** Undefined: requests go unsigned (public buckets). */
  readonly credentials: S3Credentials | undefined;
}

/** Environment variables, as `process.env` holds them. */
export type Env = Readonly<Record<string, string | undefined>>;
type Ini = Map<string, Map<string, string>>;

/** Parses an AWS shared config/credentials file into sections of keys. */
export function parseIni(text: string): Ini {
  const sections: Ini = new Map();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, '');
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (section?.[1] !== undefined) {
      current = sections.get(section[1]) ?? new Map<string, string>();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    // Nested keys (`s3 =` followed by indented lines) are kept flat: the top-level keys are what is read.
    if (current && eq > 0) current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return sections;
}

async function readIni(path: string): Promise<Ini> {
  try {
    return parseIni(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** The profile's keys: the credentials file's `[name]`, then the config file's `[profile name]` (`[default]` for default). */
async function profileKeys(env: Env): Promise<(key: string) => string | undefined> {
  const profile = nonEmpty(env['AWS_PROFILE']) ?? 'default';
  const home = nonEmpty(env['HOME']) ?? homedir();
  const creds = await readIni(nonEmpty(env['AWS_SHARED_CREDENTIALS_FILE']) ?? join(home, '.aws', 'credentials'));
  const config = await readIni(nonEmpty(env['AWS_CONFIG_FILE']) ?? join(home, '.aws', 'config'));
  const fromCreds = creds.get(profile);
  const fromConfig = config.get(profile === 'default' ? 'default' : `profile ${profile}`);
  return (key) => nonEmpty(fromCreds?.get(key)) ?? nonEmpty(fromConfig?.get(key));
}

function credentialsFrom(env: Env, file: (key: string) => string | undefined): S3Credentials | undefined {
  const id = nonEmpty(env['AWS_ACCESS_KEY_ID']);
  const secret = nonEmpty(env['AWS_SECRET_ACCESS_KEY']);
  if (id !== undefined && secret !== undefined) return { accessKeyId: id, secretAccessKey: secret, sessionToken: nonEmpty(env['AWS_SESSION_TOKEN']) };
  const fid = file('aws_access_key_id');
  const fsecret = file('aws_secret_access_key');
  if (fid !== undefined && fsecret !== undefined) return { accessKeyId: fid, secretAccessKey: fsecret, sessionToken: file('aws_session_token') };
  return undefined;
}

/**
 * Reads the S3 configuration from `env` (default `process.env`) and the
 * shared AWS files.
 *
 * @throws {InvalidArgumentError} EINVAL for an endpoint that is not an http(s) URL
 */
export async function loadS3Config(env: Env = process.env): Promise<S3Config> {
  const file = await profileKeys(env);
  const region = nonEmpty(env['AWS_REGION']) ?? nonEmpty(env['AWS_DEFAULT_REGION']) ?? file('region') ?? 'us-east-1';
  const custom = nonEmpty(env['AWS_ENDPOINT_URL_S3']) ?? nonEmpty(env['AWS_ENDPOINT_URL']) ?? file('endpoint_url');
  let endpoint: URL;
  try {
    endpoint = new URL(custom ?? `https://s3.${region}.amazonaws.com`);
  } catch {
    throw new InvalidArgumentError(`Invalid S3 endpoint URL '${custom}'`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new InvalidArgumentError(`Invalid S3 endpoint URL '${custom}': not http or https`);
  // Custom endpoints (MinIO, Ceph, s3rver, …) rarely resolve bucket host names: path-style there.
  return { endpoint, region, pathStyle: custom !== undefined, credentials: credentialsFrom(env, file) };
}
