// {{name}}: a cove tool plugin, written against the plugin contract cove:plugin@0.2.0 (vendored in
// wit/) and built with componentize-js. It offers one tool, `word_count`.
//
// Each exported WIT interface is an exported object named after it in camelCase (`tool-api` is
// `toolApi`); records are objects with camelCase fields, `option` is a value or `undefined`,
// `u64` is a BigInt. A function returning `result` returns its ok value and throws its error: a
// `tool-error` is `{ tag: 'invalid-input' | 'unknown-tool' | 'denied' | 'failed', val: message }`.

import { report } from 'cove:plugin/progress@0.2.0';

// The JSON schema of the input: what the model sends. The host checks every call against it.
const wordCountInput = {
  type: 'object',
  properties: {
    text: { type: 'string', description: 'The text to count the words of.' },
    unique: { type: 'boolean', description: 'Also count the distinct words (ignoring case).' },
  },
  required: ['text'],
  additionalProperties: false,
};

// The JSON schema of the structured output, for programs (the model reads the text).
const wordCountOutput = {
  type: 'object',
  properties: { words: { type: 'integer' }, unique: { type: 'integer' } },
  required: ['words'],
};

export const toolApi = {
  describe() {
    return [
      {
        name: 'word_count',
        description: 'Count the words of a text (and, with `unique`, the distinct ones).',
        inputSchema: JSON.stringify(wordCountInput),
        outputSchema: JSON.stringify(wordCountOutput),
        readOnly: true,
      },
    ];
  },

  call(name, input) {
    if (name !== 'word_count') {
      throw { tag: 'unknown-tool', val: name };
    }
    const args = JSON.parse(input);
    const words = args.text.split(/\s+/).filter((w) => w.length > 0);
    if (words.length === 0) {
      throw { tag: 'invalid-input', val: '`text` holds no words; pass the text to count' };
    }
    // Shown to the user beside the running call (never to the model).
    report(0n, BigInt(words.length), 'counting words');
    const result = { words: words.length };
    let text = `${words.length} words`;
    if (args.unique) {
      result.unique = new Set(words.map((w) => w.toLowerCase())).size;
      text += ` (${result.unique} unique)`;
    }
    return { text, structured: JSON.stringify(result) };
  },
};
