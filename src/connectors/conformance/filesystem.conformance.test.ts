import { describeConformance } from './conformance-suite.ts';
import { filesystemHarness } from './filesystem-harness.ts';

describeConformance(filesystemHarness());
