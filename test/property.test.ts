/** The fast-check round-trip property (test/export-import/property-suite.ts), with the extension. */
import { propertySuite } from './export-import/property-suite.js';

/** 25 runs by default (a few seconds); PROPERTY_RUNS=1000 for a longer hunt. */
propertySuite(Number(process.env.PROPERTY_RUNS ?? 25));
