import { randomUUID } from 'node:crypto';
import type { Clock, Timer } from '../clock.js';
import { ErrorCode, type ErrorCodeValue } from '../protocol/errors.js';
import type { OffsetStore } from './offset-store.js';

/**
 * The classic consumer-group protocol (Kafka's GroupCoordinator, KIP-62 for the separate
 * rebalance timeout, KIP-134 for the initial rebalance delay). States as Kafka names them; they
 * are also what DescribeGroups reports.
 */
export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export interface GroupProtocol {
  name: string;
  metadata: Buffer;
}

export interface JoinRequest {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: GroupProtocol[];
}

export interface JoinResult {
  error: ErrorCodeValue;
  generationId: number;
  protocolName: string | null;
  leaderId: string;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

export interface SyncResult {
  error: ErrorCodeValue;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

export interface GroupDescription {
  groupId: string;
  state: GroupState;
  protocolType: string;
  protocolName: string;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    metadata: Buffer;
    assignment: Buffer;
  }[];
}

export interface CoordinatorOptions {
  clock: Clock;
  offsets: OffsetStore;
  /** group.min.session.timeout.ms / group.max.session.timeout.ms (Kafka defaults 6 s / 30 min). */
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms: lets a group's first members arrive before generation 1. */
  initialRebalanceDelayMs: number;
}

/** A member is what it joined with, plus the coordinator's bookkeeping. */
interface Member extends Omit<JoinRequest, 'groupId'> {
  assignment: Buffer;
  awaitingJoin: ((result: JoinResult) => void) | null;
  awaitingSync: ((result: SyncResult) => void) | null;
  sessionTimer: Timer | null;
}

interface Group {
  groupId: string;
  state: GroupState;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  members: Map<string, Member>;
  rebalanceTimer: Timer | null;
  /** True while the KIP-134 initial delay runs: joins are collected, none answered yet. */
  initialDelay: boolean;
}

const EMPTY = Buffer.alloc(0);

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly options: CoordinatorOptions) {}

  private group(groupId: string): Group {
    let group = this.groups.get(groupId);
    if (!group) {
      group = {
        groupId,
        state: 'Empty',
        generationId: 0,
        protocolType: null,
        protocolName: null,
        leaderId: null,
        members: new Map(),
        rebalanceTimer: null,
        initialDelay: false,
      };
      this.groups.set(groupId, group);
    }
    return group;
  }

  join(request: JoinRequest): Promise<JoinResult> {
    const fail = (error: ErrorCodeValue): Promise<JoinResult> =>
      Promise.resolve({
        error,
        generationId: -1,
        protocolName: null,
        leaderId: '',
        memberId: request.memberId,
        members: [],
      });
    if (request.groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    if (
      request.sessionTimeoutMs < this.options.minSessionTimeoutMs ||
      request.sessionTimeoutMs > this.options.maxSessionTimeoutMs
    ) {
      return fail(ErrorCode.INVALID_SESSION_TIMEOUT);
    }
    const group = this.group(request.groupId);
    if (request.protocols.length === 0 || !this.protocolsCompatible(group, request)) {
      return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    }
    let member = request.memberId === '' ? undefined : group.members.get(request.memberId);
    if (request.memberId !== '' && !member) return fail(ErrorCode.UNKNOWN_MEMBER_ID);

    return new Promise<JoinResult>((resolve) => {
      if (!member) {
        member = {
          memberId: `${request.clientId || 'member'}-${randomUUID()}`,
          groupInstanceId: request.groupInstanceId,
          clientId: request.clientId,
          clientHost: request.clientHost,
          sessionTimeoutMs: request.sessionTimeoutMs,
          rebalanceTimeoutMs: request.rebalanceTimeoutMs,
          protocolType: request.protocolType,
          protocols: request.protocols,
          assignment: EMPTY,
          awaitingJoin: null,
          awaitingSync: null,
          sessionTimer: null,
        };
        group.members.set(member.memberId, member);
        if (group.protocolType === null) group.protocolType = request.protocolType;
        member.awaitingJoin = resolve;
        this.prepareRebalance(group);
        return;
      }
      const unchanged = sameProtocols(member.protocols, request.protocols);
      member.sessionTimeoutMs = request.sessionTimeoutMs;
      member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
      member.protocols = request.protocols;
      // A known member rejoining with the same metadata while nothing changed just gets the
      // current generation again (Kafka does the same for followers); anything else rebalances.
      if (
        unchanged &&
        ((group.state === 'Stable' && member.memberId !== group.leaderId) ||
          group.state === 'CompletingRebalance')
      ) {
        this.touch(group, member);
        resolve(this.joinResult(group, member));
        return;
      }
      if (member.awaitingJoin)
        member.awaitingJoin({
          ...this.joinResult(group, member),
          error: ErrorCode.UNKNOWN_MEMBER_ID,
        });
      member.awaitingJoin = resolve;
      if (group.state === 'PreparingRebalance') this.maybeCompleteJoin(group);
      else this.prepareRebalance(group);
    });
  }

  private protocolsCompatible(group: Group, request: JoinRequest): boolean {
    if (group.members.size === 0) return true;
    if (group.protocolType !== request.protocolType) return false;
    const offered = new Set(request.protocols.map((p) => p.name));
    for (const other of group.members.values()) {
      if (other.memberId === request.memberId) continue;
      if (!other.protocols.some((p) => offered.has(p.name))) return false;
    }
    return true;
  }

  private prepareRebalance(group: Group): void {
    if (group.state === 'PreparingRebalance') {
      this.maybeCompleteJoin(group);
      return;
    }
    if (group.state === 'CompletingRebalance') {
      for (const member of group.members.values()) {
        member.assignment = EMPTY;
        this.answerSync(member, {
          error: ErrorCode.REBALANCE_IN_PROGRESS,
          protocolType: null,
          protocolName: null,
          assignment: EMPTY,
        });
      }
    }
    const wasEmpty = group.state === 'Empty';
    group.state = 'PreparingRebalance';
    group.rebalanceTimer?.cancel();
    if (wasEmpty && this.options.initialRebalanceDelayMs > 0) {
      group.initialDelay = true;
      group.rebalanceTimer = this.options.clock.setTimer(() => {
        group.initialDelay = false;
        group.rebalanceTimer = this.options.clock.setTimer(
          () => this.completeJoin(group),
          this.rebalanceTimeout(group),
        );
        this.maybeCompleteJoin(group);
      }, this.options.initialRebalanceDelayMs);
      return;
    }
    group.rebalanceTimer = this.options.clock.setTimer(
      () => this.completeJoin(group),
      this.rebalanceTimeout(group),
    );
    this.maybeCompleteJoin(group);
  }

  private rebalanceTimeout(group: Group): number {
    let max = 0;
    for (const member of group.members.values()) max = Math.max(max, member.rebalanceTimeoutMs);
    return max;
  }

  private maybeCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance' || group.initialDelay) return;
    for (const member of group.members.values()) if (!member.awaitingJoin) return;
    this.completeJoin(group);
  }

  /** Ends the join phase: members that did not rejoin in time are dropped (KIP-62). */
  private completeJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    group.rebalanceTimer?.cancel();
    group.rebalanceTimer = null;
    group.initialDelay = false;
    for (const member of [...group.members.values()])
      if (!member.awaitingJoin) this.dropMember(group, member);
    group.generationId++;
    if (group.members.size === 0) {
      this.becomeEmpty(group);
      return;
    }
    group.protocolName = this.electProtocol(group);
    if (group.leaderId === null || !group.members.has(group.leaderId)) {
      group.leaderId = group.members.keys().next().value ?? null;
    }
    group.state = 'CompletingRebalance';
    for (const member of group.members.values()) {
      const answer = member.awaitingJoin;
      member.awaitingJoin = null;
      this.touch(group, member);
      answer?.(this.joinResult(group, member));
    }
  }

  private becomeEmpty(group: Group): void {
    group.state = 'Empty';
    group.protocolName = null;
    group.protocolType = null;
    group.leaderId = null;
  }

  /** Each member votes for its most preferred protocol that every member supports. */
  private electProtocol(group: Group): string | null {
    const members = [...group.members.values()];
    const first = members[0];
    if (!first) return null;
    const common = first.protocols
      .map((p) => p.name)
      .filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)));
    const votes = new Map<string, number>();
    for (const member of members) {
      const choice = member.protocols.find((p) => common.includes(p.name));
      if (choice) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
    }
    let best: string | null = null;
    let bestVotes = -1;
    for (const name of common) {
      const count = votes.get(name) ?? 0;
      if (count > bestVotes) {
        best = name;
        bestVotes = count;
      }
    }
    return best;
  }

  private joinResult(group: Group, member: Member): JoinResult {
    const isLeader = member.memberId === group.leaderId;
    return {
      error: ErrorCode.NONE,
      generationId: group.generationId,
      protocolName: group.protocolName,
      leaderId: group.leaderId ?? '',
      memberId: member.memberId,
      members: isLeader
        ? [...group.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY,
          }))
        : [],
    };
  }

  sync(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: { memberId: string; assignment: Buffer }[],
  ): Promise<SyncResult> {
    const fail = (error: ErrorCodeValue): Promise<SyncResult> =>
      Promise.resolve({ error, protocolType: null, protocolName: null, assignment: EMPTY });
    const group = this.groups.get(groupId);
    const member = group?.members.get(memberId);
    if (!group || !member) return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    if (generationId !== group.generationId) return fail(ErrorCode.ILLEGAL_GENERATION);
    if (group.state === 'PreparingRebalance') return fail(ErrorCode.REBALANCE_IN_PROGRESS);
    this.touch(group, member);
    if (group.state === 'Stable') return Promise.resolve(this.syncResult(group, member));
    return new Promise<SyncResult>((resolve) => {
      this.answerSync(member, {
        error: ErrorCode.REBALANCE_IN_PROGRESS,
        protocolType: null,
        protocolName: null,
        assignment: EMPTY,
      });
      member.awaitingSync = resolve;
      if (memberId !== group.leaderId) return;
      const given = new Map(assignments.map((a) => [a.memberId, a.assignment]));
      for (const m of group.members.values()) m.assignment = given.get(m.memberId) ?? EMPTY;
      group.state = 'Stable';
      for (const m of group.members.values()) this.answerSync(m, this.syncResult(group, m));
    });
  }

  private syncResult(group: Group, member: Member): SyncResult {
    return {
      error: ErrorCode.NONE,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      assignment: member.assignment,
    };
  }

  private answerSync(member: Member, result: SyncResult): void {
    const answer = member.awaitingSync;
    member.awaitingSync = null;
    answer?.(result);
  }

  heartbeat(groupId: string, generationId: number, memberId: string): ErrorCodeValue {
    const group = this.groups.get(groupId);
    const member = group?.members.get(memberId);
    if (!group || !member) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    this.touch(group, member);
    return group.state === 'PreparingRebalance' ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE;
  }

  leave(groupId: string, memberIds: string[]): ErrorCodeValue[] {
    const group = this.groups.get(groupId);
    const results = memberIds.map((memberId) => {
      const member = group?.members.get(memberId);
      if (!group || !member) return ErrorCode.UNKNOWN_MEMBER_ID;
      this.dropMember(group, member);
      return ErrorCode.NONE;
    });
    if (group && results.includes(ErrorCode.NONE)) this.membershipChanged(group);
    return results;
  }

  /** Session timers (KIP-62): a member that stops heartbeating is removed and the group rebalances. */
  private touch(group: Group, member: Member): void {
    member.sessionTimer?.cancel();
    member.sessionTimer = this.options.clock.setTimer(() => {
      member.sessionTimer = null;
      // A member waiting in JoinGroup is bounded by the rebalance timeout instead.
      if (member.awaitingJoin || group.members.get(member.memberId) !== member) return;
      this.dropMember(group, member);
      this.membershipChanged(group);
    }, member.sessionTimeoutMs);
  }

  private dropMember(group: Group, member: Member): void {
    member.sessionTimer?.cancel();
    member.sessionTimer = null;
    group.members.delete(member.memberId);
    const joinAnswer = member.awaitingJoin;
    member.awaitingJoin = null;
    joinAnswer?.({
      ...this.joinResult(group, member),
      members: [],
      error: ErrorCode.UNKNOWN_MEMBER_ID,
    });
    this.answerSync(member, {
      error: ErrorCode.UNKNOWN_MEMBER_ID,
      protocolType: null,
      protocolName: null,
      assignment: EMPTY,
    });
  }

  private membershipChanged(group: Group): void {
    if (group.state === 'PreparingRebalance') {
      this.maybeCompleteJoin(group);
    } else if (group.members.size === 0) {
      group.generationId++;
      group.rebalanceTimer?.cancel();
      group.rebalanceTimer = null;
      this.becomeEmpty(group);
    } else if (group.state === 'Stable' || group.state === 'CompletingRebalance') {
      this.prepareRebalance(group);
    }
  }

  /**
   * Validates an OffsetCommit the way Kafka does: a group not under management (generation -1,
   * no member id, group empty) may commit freely; members must be current, and commits are
   * refused while assignments are being handed out (CompletingRebalance) but allowed during
   * PreparingRebalance so members can commit before they rejoin.
   */
  validateCommit(groupId: string, generationId: number, memberId: string): ErrorCodeValue {
    if (groupId === '') return ErrorCode.INVALID_GROUP_ID;
    const group = this.groups.get(groupId);
    if (generationId < 0 && memberId === '' && (!group || group.state === 'Empty'))
      return ErrorCode.NONE;
    if (!group) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (group.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    if (!group.members.has(memberId)) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    return ErrorCode.NONE;
  }

  describe(groupId: string): GroupDescription {
    const group = this.groups.get(groupId);
    if (!group) {
      const known = this.options.offsets.groupIds().includes(groupId);
      return {
        groupId,
        state: known ? 'Empty' : 'Dead',
        protocolType: '',
        protocolName: '',
        members: [],
      };
    }
    return {
      groupId,
      state: group.state,
      protocolType: group.protocolType ?? '',
      protocolName:
        group.state === 'Stable' || group.state === 'CompletingRebalance'
          ? (group.protocolName ?? '')
          : '',
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY,
        assignment: m.assignment,
      })),
    };
  }

  /** Groups with members or committed offsets, as ListGroups reports them. */
  list(): { groupId: string; protocolType: string; state: GroupState }[] {
    const out = new Map<string, { groupId: string; protocolType: string; state: GroupState }>();
    for (const groupId of this.options.offsets.groupIds())
      out.set(groupId, { groupId, protocolType: '', state: 'Empty' });
    for (const group of this.groups.values()) {
      out.set(group.groupId, {
        groupId: group.groupId,
        protocolType: group.protocolType ?? '',
        state: group.state,
      });
    }
    return [...out.values()];
  }

  /** Answers every parked request and cancels timers (broker stop). */
  close(): void {
    for (const group of this.groups.values()) {
      group.rebalanceTimer?.cancel();
      for (const member of [...group.members.values()]) this.dropMember(group, member);
    }
    this.groups.clear();
  }
}

function sameProtocols(a: GroupProtocol[], b: GroupProtocol[]): boolean {
  return (
    a.length === b.length &&
    a.every((p, i) => p.name === b[i]?.name && p.metadata.equals(b[i].metadata))
  );
}
