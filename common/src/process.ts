// The process entry every deployable's main.ts hands its parts to: read the configuration (what
// fails there is bad configuration, whatever the cause: one line on stderr and exit code 78),
// start, and stop on SIGTERM or SIGINT (exit 0, or 1 when stopping fails).
import { ConfigError } from './errors.ts';

/** What a started process hands back: its logger, and how it stops. */
export interface Started {
  logger: {
    info(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
  /** Fields of the `shutting down` log line, beside the signal. */
  stopping?: Record<string, unknown>;
  stop(): Promise<void>;
}

export interface ProcessEntry<C> {
  /** Names the process at the start of its stderr line (`arc-operator: ...`). */
  name: string;
  /** Reads and checks the configuration, and whatever else is configuration (credentials, folders). */
  configure(): C | Promise<C>;
  start(config: C): Promise<Started>;
}

/** One line for stderr: every problem of a ConfigError, or the error's message. */
export function configProblemLine(err: unknown): string {
  if (err instanceof ConfigError) return `invalid configuration: ${err.problems.join('; ')}`;
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ');
}

export async function runProcess<C>(entry: ProcessEntry<C>): Promise<void> {
  let config: C;
  try {
    config = await entry.configure();
  } catch (err) {
    process.stderr.write(`${entry.name}: ${configProblemLine(err)}\n`);
    process.exit(78);
  }
  // A folder or a database file that cannot be used is found while starting: bad
  // configuration too, with the same one line and exit code.
  const started = await entry.start(config).catch((err: unknown) => {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${entry.name}: ${configProblemLine(err)}\n`);
    process.exit(78);
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    started.logger.info({ signal, ...started.stopping }, 'shutting down');
    started.stop().then(
      () => {
        started.logger.info({}, 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        started.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
