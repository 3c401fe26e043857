// {{name}}: a cove skill plugin, written against the plugin contract cove:plugin@0.2.0 (vendored
// in wit/) and built with componentize-js. The model sees the skill's name and description in its
// index, loads the instructions when it wants them, and from then on may call the tool the skill
// bundles, `check_subject`.
//
// Each exported WIT interface is an exported object named after it in camelCase (`skill-api` is
// `skillApi`, `tool-api` is `toolApi`).

const checkSubjectInput = {
  type: 'object',
  properties: {
    subject: { type: 'string', description: 'The first line of a commit message.' },
    max_length: { type: 'integer', minimum: 1, description: 'The longest subject allowed (default 72).' },
  },
  required: ['subject'],
  additionalProperties: false,
};

export const skillApi = {
  name() {
    return '{{name}}';
  },
  description() {
    return "Write commit messages in this project's style; use before committing.";
  },
  instructions() {
    return [
      '# Commit messages',
      'Write the subject in the imperative ("Fix the parser", not "Fixed"), without a full stop,',
      'and check it with the `check_subject` tool before you commit. Leave a blank line, then say',
      'why the change was made.',
    ].join('\n');
  },
};

export const toolApi = {
  describe() {
    return [
      {
        name: 'check_subject',
        description: 'Check a commit subject line: its length and its final full stop.',
        inputSchema: JSON.stringify(checkSubjectInput),
        outputSchema: undefined,
        readOnly: true,
      },
    ];
  },

  call(name, input) {
    if (name !== 'check_subject') {
      throw { tag: 'unknown-tool', val: name };
    }
    const { subject, max_length: max = 72 } = JSON.parse(input);
    let text;
    if (subject.length > max) {
      text = `too long: ${subject.length} characters, at most ${max}`;
    } else if (subject.trimEnd().endsWith('.')) {
      text = 'drop the full stop at the end';
    } else {
      text = `ok (${subject.length} characters)`;
    }
    return { text, structured: undefined };
  },
};
