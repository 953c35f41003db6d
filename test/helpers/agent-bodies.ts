/**
 * Registration and heartbeat bodies as a node would send them, for tests that talk to the node-facing
 * API by hand (a real node makes its own). Each is valid as it is; a test changes what it probes.
 */
import { PUBLIC_KEYS } from './cluster.ts';

export function registrationBody(key: string, name: string, version = '0.1.0') {
  return {
    key,
    name,
    version,
    peerHost: '127.0.0.1',
    peerPort: 9,
    tls: false,
    cores: 1,
    memoryBytes: 0,
    defaultLimit: 1,
    ...PUBLIC_KEYS,
  };
}

export function heartbeatBody(version = '0.1.0', running: string[] = []) {
  return {
    version,
    metrics: {
      cpuPercent: 1,
      memoryAvailableBytes: 1,
      memoryTotalBytes: 2,
      networkInBytesPerSec: 0,
      networkOutBytesPerSec: 0,
    },
    running,
    defaultLimit: 1,
    draining: false,
    upgrading: false,
    tls: false,
    peerHost: '127.0.0.1',
    peerPort: 9,
    reach: [],
    ...PUBLIC_KEYS,
  };
}
