import { IntegrityError, ScriptoriumError } from '../core/errors.js';
import { prefixedSource, readHead, type ByteSource } from '../formats/byte-reader.js';
import { AGE_HEAD_BYTES, ageIntro, ageSource, type AgeKeys, type AgeKind } from './age-reader.js';

/**
 * The first step of reading an import's input: an age file (recognised by its header, before any
 * compression) is authenticated and decrypted; anything else passes through unchanged. Returns the
 * source to go on reading (from its first byte) and how it was encrypted, if it was.
 */
export async function openAgeInput(raw: ByteSource, keys: AgeKeys): Promise<{ source: ByteSource; kind?: AgeKind }> {
  const head = await readHead(raw, AGE_HEAD_BYTES);
  const source = prefixedSource(head, raw);
  switch (ageIntro(head)) {
    case 'age':
      return ageSource(source, keys);
    case 'armored':
      throw new ScriptoriumError('E_UNSUPPORTED', 'import: the input is an ASCII-armored age file', {
        hint: 'Decode it first: `age -d -i KEY file | scriptorium import - --into DB` (or encrypt without --armor).',
      });
    case 'damaged':
      throw new IntegrityError('E_CORRUPT', 'import: the input starts like an age file whose first line is damaged', {
        hint: 'The encrypted file was changed after it was written; nothing was written to the target.',
      });
    default:
      return { source };
  }
}
