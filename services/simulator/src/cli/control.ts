/**
 * The replay's HTTP control (`--control-port`): `GET /status`, `POST /pause`, `/resume`,
 * `/step`, `/seek?to=ISO`, `/speed?x=N`. Every answer is the status after the command, as JSON;
 * a bad parameter is a 400 with the reason.
 */
import { createServer } from 'node:http';
import type { OpsServer } from '@candlestream/runtime';
import { listen } from '@candlestream/runtime';
import type { Interval } from '@candlestream/core';
import { errorMessage, parseInstant } from '@candlestream/core';
import express from 'express';
import type { ReplayStatus } from '../replay/types.js';
import type { ControlEvent } from '../session.machine.js';
import { parseSpeed } from './args.js';

export interface ControlOptions {
  port: number;
  host?: string;
  /** What a step publishes (the --step bar). */
  step: Interval;
  control: (event: ControlEvent) => void;
  status: () => ReplayStatus | undefined;
}

export async function startControlServer(options: ControlOptions): Promise<OpsServer> {
  const app = express();
  app.disable('x-powered-by');
  const answer = (res: express.Response): void => {
    res.set('cache-control', 'no-store').json(options.status() ?? { state: 'preparing' });
  };
  const command =
    (event: (req: express.Request) => ControlEvent) =>
    (req: express.Request, res: express.Response): void => {
      let control: ControlEvent;
      try {
        control = event(req);
      } catch (err) {
        res.status(400).json({ error: errorMessage(err) });
        return;
      }
      options.control(control);
      answer(res);
    };
  const param = (req: express.Request, name: string): string => {
    const value = req.query[name];
    if (typeof value !== 'string' || value === '') throw new Error(`${name} is required`);
    return value;
  };
  app.get('/status', (_req, res) => answer(res));
  app.post(
    '/pause',
    command(() => ({ type: 'PAUSE' })),
  );
  app.post(
    '/resume',
    command(() => ({ type: 'RESUME' })),
  );
  app.post(
    '/step',
    command(() => ({ type: 'STEP', interval: options.step })),
  );
  app.post(
    '/seek',
    command((req) => {
      const to = parseInstant(param(req, 'to'));
      if (to === undefined) throw new Error('to must be ISO-8601 or epoch ms');
      return { type: 'SEEK', to };
    }),
  );
  app.post(
    '/speed',
    command((req) => ({ type: 'SPEED', speed: parseSpeed(param(req, 'x')) })),
  );
  app.use((req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
  });
  return listen(createServer(app), {
    port: options.port,
    host: options.host ?? '127.0.0.1',
    portVariable: '--control-port',
  });
}
