import { ErrorCode } from '../protocol/errors.js';
import { Writer } from '../protocol/writer.js';
import {
  handleCreatePartitions,
  handleCreateTopics,
  handleDeleteTopics,
  handleDescribeConfigs,
  handleInitProducerId,
} from './admin.js';
import { handleFetch } from './fetch.js';
import {
  handleDescribeGroups,
  handleFindCoordinator,
  handleHeartbeat,
  handleJoinGroup,
  handleLeaveGroup,
  handleListGroups,
  handleSyncGroup,
} from './groups.js';
import { handleListOffsets } from './list-offsets.js';
import { handleMetadata } from './metadata.js';
import { handleOffsetCommit, handleOffsetFetch } from './offsets.js';
import { handleProduce } from './produce.js';
import type { ApiSpec, Handler } from './types.js';

export const API_VERSIONS_KEY = 18;

/**
 * ApiVersions v0-3 (KIP-35, KIP-511). v3 requests are flexible, but the response header stays v0
 * so a client can always read it. Versions are capped below each API's first flexible version,
 * so no other response needs tagged fields; kafkajs 2.2.4 and librdkafka both accept that.
 */
const handleApiVersions: Handler = (_ctx, { header, body }) => {
  const v = header.apiVersion;
  if (v >= 3) {
    body.compactString(); // client_software_name
    body.compactString(); // client_software_version
    body.skipTaggedFields();
  }
  return apiVersionsBody(v, ErrorCode.NONE);
};

/** Also the answer to an ApiVersions version we do not know: v0 layout plus UNSUPPORTED_VERSION. */
export function apiVersionsBody(version: number, error: number): Writer {
  const w = new Writer().int16(error);
  if (version >= 3) {
    w.compactArray(API_TABLE, (w, api) =>
      w
        .int16(api.key)
        .int16(api.advertisedMinVersion ?? api.minVersion)
        .int16(api.maxVersion)
        .noTaggedFields(),
    );
    w.int32(0).noTaggedFields();
    return w;
  }
  w.array(API_TABLE, (w, api) =>
    w
      .int16(api.key)
      .int16(api.advertisedMinVersion ?? api.minVersion)
      .int16(api.maxVersion),
  );
  if (version >= 1) w.int32(0);
  return w;
}

/** Every API this broker serves, with the versions it advertises; nothing else is advertised. */
export const API_TABLE: readonly ApiSpec[] = [
  // librdkafka sends gzip, snappy and lz4 only to a broker whose Produce range reaches v0 (and
  // zstd only with v7); without v0 it silently sends them uncompressed. Kafka 4 advertises v0-2
  // for this reason yet refuses them (KAFKA-18659); so do we. Clients pick the highest common
  // version, so none sends v0-2 (magic 0/1 message sets) here.
  {
    key: 0,
    name: 'Produce',
    minVersion: 3,
    advertisedMinVersion: 0,
    maxVersion: 7,
    handle: handleProduce,
  },
  { key: 1, name: 'Fetch', minVersion: 4, maxVersion: 11, handle: handleFetch },
  { key: 2, name: 'ListOffsets', minVersion: 0, maxVersion: 3, handle: handleListOffsets },
  { key: 3, name: 'Metadata', minVersion: 0, maxVersion: 6, handle: handleMetadata },
  { key: 8, name: 'OffsetCommit', minVersion: 0, maxVersion: 7, handle: handleOffsetCommit },
  { key: 9, name: 'OffsetFetch', minVersion: 0, maxVersion: 5, handle: handleOffsetFetch },
  { key: 10, name: 'FindCoordinator', minVersion: 0, maxVersion: 2, handle: handleFindCoordinator },
  { key: 11, name: 'JoinGroup', minVersion: 0, maxVersion: 5, handle: handleJoinGroup },
  { key: 12, name: 'Heartbeat', minVersion: 0, maxVersion: 3, handle: handleHeartbeat },
  { key: 13, name: 'LeaveGroup', minVersion: 0, maxVersion: 3, handle: handleLeaveGroup },
  { key: 14, name: 'SyncGroup', minVersion: 0, maxVersion: 3, handle: handleSyncGroup },
  { key: 15, name: 'DescribeGroups', minVersion: 0, maxVersion: 2, handle: handleDescribeGroups },
  { key: 16, name: 'ListGroups', minVersion: 0, maxVersion: 2, handle: handleListGroups },
  {
    key: API_VERSIONS_KEY,
    name: 'ApiVersions',
    minVersion: 0,
    maxVersion: 3,
    flexibleFrom: 3,
    handle: handleApiVersions,
  },
  { key: 19, name: 'CreateTopics', minVersion: 0, maxVersion: 4, handle: handleCreateTopics },
  { key: 20, name: 'DeleteTopics', minVersion: 0, maxVersion: 3, handle: handleDeleteTopics },
  { key: 22, name: 'InitProducerId', minVersion: 0, maxVersion: 1, handle: handleInitProducerId },
  { key: 32, name: 'DescribeConfigs', minVersion: 0, maxVersion: 2, handle: handleDescribeConfigs },
  {
    key: 37,
    name: 'CreatePartitions',
    minVersion: 0,
    maxVersion: 1,
    handle: handleCreatePartitions,
  },
];

export const API_BY_KEY: ReadonlyMap<number, ApiSpec> = new Map(
  API_TABLE.map((api) => [api.key, api]),
);
