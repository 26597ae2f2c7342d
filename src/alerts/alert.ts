/** An alert as it is delivered: the same fields in a webhook's JSON body, a command's stdin and environment. */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';

export type AlertState = 'firing' | 'repeat' | 'resolved' | 'test';

export interface Alert {
  /** Unique per delivery; the journal records it. */
  id: string;
  source: 'scriptorium';
  /** The alert (scriptorium.config.json `alerts.<name>`). */
  alert: string;
  job: string;
  condition: string;
  state: AlertState;
  /** One line for a title or a push notification. */
  title: string;
  /** What happened and what to look at. */
  message: string;
  /** ISO time. */
  at: string;
  host: string;
  details?: Record<string, unknown>;
}

/** Builds an alert with a fresh id and the title its state and condition call for. */
export function makeAlert(fields: Pick<Alert, 'alert' | 'job' | 'condition' | 'state' | 'message'> & { at: number; details?: Record<string, unknown> }): Alert {
  const verb = fields.state === 'resolved' ? 'resolved' : fields.state === 'test' ? 'test' : fields.state === 'repeat' ? 'still' : 'alert';
  return {
    id: randomUUID(),
    source: 'scriptorium',
    alert: fields.alert,
    job: fields.job,
    condition: fields.condition,
    state: fields.state,
    title: `scriptorium ${verb}: ${fields.job}: ${fields.condition}`,
    message: fields.message,
    at: new Date(fields.at).toISOString(),
    host: hostname(),
    ...(fields.details ? { details: fields.details } : {}),
  };
}
