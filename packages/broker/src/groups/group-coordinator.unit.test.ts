import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import { ErrorCode } from '../protocol/errors.js';
import { GroupCoordinator, type JoinRequest, type JoinResult } from './group-coordinator.js';
import { OffsetStore } from './offset-store.js';

const SESSION_TIMEOUT_MS = 10_000;
const REBALANCE_TIMEOUT_MS = 30_000;
const INITIAL_DELAY_MS = 300;

function setup(): { clock: ManualClock; coordinator: GroupCoordinator } {
  const clock = new ManualClock();
  const coordinator = new GroupCoordinator({
    clock,
    offsets: OffsetStore.open(null),
    minSessionTimeoutMs: 1000,
    maxSessionTimeoutMs: 60_000,
    initialRebalanceDelayMs: INITIAL_DELAY_MS,
  });
  return { clock, coordinator };
}

function joinRequest(memberId = '', protocols = ['range']): JoinRequest {
  return {
    groupId: 'g',
    memberId,
    groupInstanceId: null,
    clientId: 'c',
    clientHost: '127.0.0.1',
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS,
    protocolType: 'consumer',
    protocols: protocols.map((name) => ({ name, metadata: Buffer.from(name) })),
  };
}

/** Lets resolved promises run: the coordinator answers through them. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function track<T>(promise: Promise<T>): Promise<{ value: T | undefined }> {
  const box: { value: T | undefined } = { value: undefined };
  void promise.then((v) => (box.value = v));
  await settle();
  return box;
}

describe('GroupCoordinator', () => {
  it('collects first joins during the initial delay, then forms generation 1 with one leader', async () => {
    const { clock, coordinator } = setup();
    const a = await track(coordinator.join(joinRequest()));
    const b = await track(coordinator.join(joinRequest()));
    expect(a.value).toBeUndefined();
    expect(coordinator.describe('g').state).toBe('PreparingRebalance');
    clock.advance(INITIAL_DELAY_MS);
    await settle();
    const ra = a.value as JoinResult;
    const rb = b.value as JoinResult;
    expect(ra.generationId).toBe(1);
    expect(rb.generationId).toBe(1);
    expect(ra.leaderId).toBe(rb.leaderId);
    const leader = ra.memberId === ra.leaderId ? ra : rb;
    const follower = leader === ra ? rb : ra;
    expect(leader.members).toHaveLength(2);
    expect(follower.members).toEqual([]);
    expect(coordinator.describe('g').state).toBe('CompletingRebalance');

    // The follower's SyncGroup parks until the leader's assignment arrives.
    const followerSync = await track(coordinator.sync('g', 1, follower.memberId, []));
    expect(followerSync.value).toBeUndefined();
    const leaderSync = await track(
      coordinator.sync('g', 1, leader.memberId, [
        { memberId: leader.memberId, assignment: Buffer.from('L') },
        { memberId: follower.memberId, assignment: Buffer.from('F') },
      ]),
    );
    expect(leaderSync.value?.assignment.toString()).toBe('L');
    expect(followerSync.value?.assignment.toString()).toBe('F');
    expect(coordinator.describe('g').state).toBe('Stable');
    expect(coordinator.heartbeat('g', 1, follower.memberId)).toBe(ErrorCode.NONE);
    expect(coordinator.heartbeat('g', 0, follower.memberId)).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(coordinator.heartbeat('g', 1, 'nobody')).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  async function stableGroupOfTwo(): Promise<{
    clock: ManualClock;
    coordinator: GroupCoordinator;
    leader: string;
    follower: string;
  }> {
    const { clock, coordinator } = setup();
    const a = await track(coordinator.join(joinRequest()));
    const b = await track(coordinator.join(joinRequest()));
    clock.advance(INITIAL_DELAY_MS);
    await settle();
    const leader = (a.value as JoinResult).leaderId;
    const follower = [(a.value as JoinResult).memberId, (b.value as JoinResult).memberId].find(
      (m) => m !== leader,
    ) as string;
    await track(coordinator.sync('g', 1, leader, []));
    await track(coordinator.sync('g', 1, follower, []));
    return { clock, coordinator, leader, follower };
  }

  it('a leaving member triggers a rebalance the others learn of through heartbeats', async () => {
    const { coordinator, leader, follower } = await stableGroupOfTwo();
    expect(coordinator.leave('g', [follower])).toEqual([ErrorCode.NONE]);
    expect(coordinator.describe('g').state).toBe('PreparingRebalance');
    expect(coordinator.heartbeat('g', 1, leader)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    // Commits by current members still go through before they rejoin.
    expect(coordinator.validateCommit('g', 1, leader)).toBe(ErrorCode.NONE);
    const rejoin = await track(coordinator.join(joinRequest(leader)));
    expect(rejoin.value?.generationId).toBe(2);
    expect(rejoin.value?.members.map((m) => m.memberId)).toEqual([leader]);
  });

  it('expires a member that stops heartbeating after its session timeout', async () => {
    const { clock, coordinator, leader, follower } = await stableGroupOfTwo();
    clock.advance(SESSION_TIMEOUT_MS / 2);
    expect(coordinator.heartbeat('g', 1, leader)).toBe(ErrorCode.NONE);
    expect(coordinator.describe('g').members).toHaveLength(2);
    clock.advance(SESSION_TIMEOUT_MS / 2);
    // The follower never heartbeated: gone, and the group is rebalancing without it.
    expect(coordinator.describe('g').members.map((m) => m.memberId)).toEqual([leader]);
    expect(coordinator.heartbeat('g', 1, follower)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(coordinator.heartbeat('g', 1, leader)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
  });

  it('drops members that do not rejoin within the rebalance timeout', async () => {
    const { clock, coordinator, leader, follower } = await stableGroupOfTwo();
    const newcomer = await track(coordinator.join(joinRequest()));
    const leaderRejoin = await track(coordinator.join(joinRequest(leader)));
    // Keep the follower's session alive but never rejoin.
    clock.advance(SESSION_TIMEOUT_MS / 2);
    coordinator.heartbeat('g', 1, follower);
    expect(newcomer.value).toBeUndefined();
    clock.advance(REBALANCE_TIMEOUT_MS);
    await settle();
    expect(leaderRejoin.value?.generationId).toBe(2);
    expect(leaderRejoin.value?.members.map((m) => m.memberId).sort()).toEqual(
      [leader, newcomer.value?.memberId].sort(),
    );
    expect(coordinator.heartbeat('g', 2, follower)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('refuses bad joins: unknown member, session timeout out of range, no common protocol', async () => {
    const { clock, coordinator } = setup();
    expect((await coordinator.join(joinRequest('ghost'))).error).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await coordinator.join({ ...joinRequest(), sessionTimeoutMs: 10 })).error).toBe(
      ErrorCode.INVALID_SESSION_TIMEOUT,
    );
    const first = await track(coordinator.join(joinRequest('', ['range'])));
    expect((await coordinator.join(joinRequest('', ['roundrobin']))).error).toBe(
      ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
    );
    clock.advance(INITIAL_DELAY_MS);
    await settle();
    expect(first.value?.protocolName).toBe('range');
  });

  it('the last member leaving empties the group; simple commits are then accepted', async () => {
    const { coordinator, leader, follower } = await stableGroupOfTwo();
    expect(coordinator.validateCommit('g', -1, '')).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    coordinator.leave('g', [leader, follower]);
    await settle();
    expect(coordinator.describe('g').state).toBe('Empty');
    expect(coordinator.validateCommit('g', -1, '')).toBe(ErrorCode.NONE);
  });
});
