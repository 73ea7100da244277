export { loadDatastoreConfig, type DatastoreConfig } from './config.js';
export { startDatastore, SERVICE_NAME, type Datastore } from './service.js';
export { datastoreMachine } from './datastore.machine.js';
