export { runReplayCli, type CliIo } from './cli/main.js';
export { parseReplayArgs, USAGE, UsageError, type ReplayArgs } from './cli/args.js';
export { sessionMachine } from './session.machine.js';
export { ReplayEngine, type ReplaySummary } from './replay/engine.js';
export type {
  HistorySource,
  ReplayRange,
  ReplaySink,
  ReplaySpeed,
  ReplayStatus,
} from './replay/types.js';
export { startSimulator, SERVICE_NAME, type Simulator } from './service.js';
export { loadSimulatorConfig, type SimulatorConfig } from './config.js';
export { simulatorMachine } from './simulator.machine.js';
