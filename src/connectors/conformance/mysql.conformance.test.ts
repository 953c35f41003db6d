import { describeConformance } from './conformance-suite.ts';
import { mysqlHarness } from './mysql-harness.ts';

describeConformance(mysqlHarness());
