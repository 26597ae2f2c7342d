/**
 * The parts of the AWS SDK the S3 store uses, and nothing else. `npm run build` bundles this module
 * with everything it imports into one tree-shaken file, dist/vendor/s3-sdk.js (scripts/bundle-s3-sdk.mjs),
 * which the store loads; this module itself (which loads the SDK as published) is the fallback when
 * the bundle is absent (running from the sources, or a build made by `tsc` alone).
 */
export {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
