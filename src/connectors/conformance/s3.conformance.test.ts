import { describeConformance } from './conformance-suite.ts';
import { s3Harness } from './s3-harness.ts';

describeConformance(s3Harness());
