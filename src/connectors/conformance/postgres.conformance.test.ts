import { describeConformance } from './conformance-suite.ts';
import { postgresHarness } from './postgres-harness.ts';

describeConformance(postgresHarness());
