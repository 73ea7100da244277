import { ErrorCode } from '../protocol/errors.js';
import { Writer } from '../protocol/writer.js';
import type { Handler } from './types.js';

/** FindCoordinator v0-2: this node coordinates every group (and would every transaction). */
export const handleFindCoordinator: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  body.string(); // key (group id)
  if (v >= 1) body.int8(); // key_type
  const w = new Writer();
  if (v >= 1) w.int32(0);
  w.int16(ErrorCode.NONE);
  if (v >= 1) w.string(null);
  w.int32(ctx.nodeId).string(ctx.advertisedHost).int32(ctx.advertisedPort);
  return w;
};

/** JoinGroup v0-5; parks until the group's join phase completes (the coordinator decides). */
export const handleJoinGroup: Handler = async (ctx, { header, body, clientHost }) => {
  const v = header.apiVersion;
  const groupId = body.string();
  const sessionTimeoutMs = body.int32();
  // v0 has no separate rebalance timeout: the session timeout doubled as it (KIP-62).
  const rebalanceTimeoutMs = v >= 1 ? body.int32() : sessionTimeoutMs;
  const memberId = body.string();
  const groupInstanceId = v >= 5 ? body.nullableString() : null;
  const protocolType = body.string();
  const protocols = body.array((r) => ({ name: r.string(), metadata: Buffer.from(r.bytes()) }));
  const result = await ctx.groups.join({
    groupId,
    memberId,
    groupInstanceId,
    clientId: header.clientId ?? '',
    clientHost,
    sessionTimeoutMs,
    rebalanceTimeoutMs,
    protocolType,
    protocols,
  });
  const w = new Writer();
  if (v >= 2) w.int32(0);
  w.int16(result.error)
    .int32(result.generationId)
    .string(result.protocolName ?? '')
    .string(result.leaderId)
    .string(result.memberId);
  w.array(result.members, (w, m) => {
    w.string(m.memberId);
    if (v >= 5) w.string(m.groupInstanceId);
    w.bytes(m.metadata);
  });
  return w;
};

/** SyncGroup v0-3: the leader's assignments, handed to every member of the generation. */
export const handleSyncGroup: Handler = async (ctx, { header, body }) => {
  const v = header.apiVersion;
  const groupId = body.string();
  const generationId = body.int32();
  const memberId = body.string();
  if (v >= 3) body.nullableString(); // group_instance_id: static membership is not implemented.
  const assignments = body.array((r) => ({
    memberId: r.string(),
    assignment: Buffer.from(r.bytes()),
  }));
  const result = await ctx.groups.sync(groupId, generationId, memberId, assignments);
  const w = new Writer();
  if (v >= 1) w.int32(0);
  w.int16(result.error).bytes(result.assignment);
  return w;
};

/** Heartbeat v0-3: keeps the session alive; REBALANCE_IN_PROGRESS tells the member to rejoin. */
export const handleHeartbeat: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  const groupId = body.string();
  const generationId = body.int32();
  const memberId = body.string();
  if (v >= 3) body.nullableString();
  const error = ctx.groups.heartbeat(groupId, generationId, memberId);
  const w = new Writer();
  if (v >= 1) w.int32(0);
  return w.int16(error);
};

/** LeaveGroup v0-3 (v3 leaves several members at once, KIP-345). */
export const handleLeaveGroup: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  const groupId = body.string();
  const members =
    v >= 3
      ? body.array((r) => ({ memberId: r.string(), groupInstanceId: r.nullableString() }))
      : [{ memberId: body.string(), groupInstanceId: null }];
  const errors = ctx.groups.leave(
    groupId,
    members.map((m) => m.memberId),
  );
  const w = new Writer();
  if (v >= 1) w.int32(0);
  if (v < 3) return w.int16(errors[0] ?? ErrorCode.UNKNOWN_MEMBER_ID);
  w.int16(ErrorCode.NONE);
  w.array(members, (w, m, i) => {
    w.string(m.memberId)
      .string(m.groupInstanceId)
      .int16(errors[i] ?? ErrorCode.UNKNOWN_MEMBER_ID);
  });
  return w;
};

/** DescribeGroups v0-2. */
export const handleDescribeGroups: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  const groupIds = body.array((r) => r.string());
  const w = new Writer();
  if (v >= 1) w.int32(0);
  w.array(groupIds, (w, groupId) => {
    const d = ctx.groups.describe(groupId);
    w.int16(ErrorCode.NONE)
      .string(d.groupId)
      .string(d.state)
      .string(d.protocolType)
      .string(d.protocolName);
    w.array(d.members, (w, m) => {
      w.string(m.memberId)
        .string(m.clientId)
        .string(m.clientHost)
        .bytes(m.metadata)
        .bytes(m.assignment);
    });
  });
  return w;
};

/** ListGroups v0-2. */
export const handleListGroups: Handler = (ctx, { header }) => {
  const w = new Writer();
  if (header.apiVersion >= 1) w.int32(0);
  w.int16(ErrorCode.NONE);
  w.array(ctx.groups.list(), (w, g) => w.string(g.groupId).string(g.protocolType));
  return w;
};
