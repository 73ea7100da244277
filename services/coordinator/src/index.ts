export { loadCoordinatorConfig, type CoordinatorConfig } from './config.js';
export { startCoordinator, SERVICE_NAME, type Coordinator } from './service.js';
export { coordinatorMachine } from './coordinator.machine.js';
export { jobMachine } from './job.machine.js';
