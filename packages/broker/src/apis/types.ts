import type { Logger } from '@candlestream/logger';
import type { Clock } from '../clock.js';
import type { GroupCoordinator } from '../groups/group-coordinator.js';
import type { OffsetStore } from '../groups/offset-store.js';
import type { Reader } from '../protocol/reader.js';
import type { Writer } from '../protocol/writer.js';
import type { TopicStore } from '../storage/topic-store.js';

/** Everything a request handler may touch: the broker's state, never the socket. */
export interface BrokerContext {
  nodeId: number;
  /** The address clients are told to connect to (Metadata, FindCoordinator). */
  advertisedHost: string;
  advertisedPort: number;
  clusterId: string;
  topics: TopicStore;
  groups: GroupCoordinator;
  offsets: OffsetStore;
  clock: Clock;
  logger: Logger;
  allowAutoTopicCreation: boolean;
  /** message.max.bytes: the largest record batch a producer may send. */
  maxMessageBytes: number;
  nextProducerId(): number;
}

/** Request header v1/v2 (protocol guide, "Headers"). */
export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

export interface Request {
  header: RequestHeader;
  body: Reader;
  clientHost: string;
  /** Aborted when the connection closes or the broker stops: ends long polls early. */
  signal: AbortSignal;
}

/** Returns the response body, or null when the protocol says not to answer (acks=0 produce). */
export type Handler = (
  ctx: BrokerContext,
  request: Request,
) => Writer | null | Promise<Writer | null>;

export interface ApiSpec {
  key: number;
  name: string;
  /** The lowest version served; a request below it gets UNSUPPORTED_VERSION. */
  minVersion: number;
  maxVersion: number;
  /**
   * The lowest version ApiVersions reports, when that must differ from what is served: Kafka 4
   * advertises Produce v0 it no longer serves, because librdkafka checks "Produce v0 supported"
   * before it compresses with gzip, snappy or lz4 (KAFKA-18659, librdkafka#4956).
   */
  advertisedMinVersion?: number;
  /** First version using flexible (KIP-482) encoding, if any version we serve does. */
  flexibleFrom?: number;
  handle: Handler;
}
