import { azureBlobHarness } from './azure-blob-harness.ts';
import { describeConformance } from './conformance-suite.ts';

describeConformance(azureBlobHarness());
