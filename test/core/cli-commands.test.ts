// The CLI's subcommands: listed by --help, each with its own --help; an unknown one is a usage error.
import test from 'ava';
import { COMMANDS } from '../../src/commands/index.js';
import { runCli } from '../helpers/cli.js';

test('--help lists every command with its summary', async (t) => {
  const { code, stdout } = await runCli(['--help']);
  t.is(code, 0);
  t.true(stdout.includes('proxyline <command> [arguments]'));
  t.deepEqual(
    COMMANDS.map((command) => command.name),
    ['har', 'report', 'validate', 'print-pipeline'],
  );
  for (const command of COMMANDS) t.regex(stdout, new RegExp(`\\n  ${command.name} +${command.summary.replace(/[()]/g, '\\$&')}\\n`), command.name);
});

test('<command> --help and -h print its usage and exit 0', async (t) => {
  for (const command of COMMANDS) {
    const capture = command.name === 'har' || command.name === 'report';
    for (const flag of ['--help', '-h']) {
      const { code, stdout, stderr } = await runCli([command.name, flag]);
      t.is(code, 0, `${command.name} ${flag}`);
      t.is(stderr, '');
      t.true(stdout.startsWith(`Usage: proxyline ${command.name} ${capture ? 'CAPTURE.jsonl' : '[--config FILE]'}`), `${command.name} ${flag}`);
      t.true(stdout.includes(capture ? '--out <file>' : '--config <file>'));
    }
  }
});

test('an unknown command exits 2 with a reason, and starts no proxy', async (t) => {
  const { code, stdout, stderr } = await runCli(['hra', 'x.jsonl']);
  t.is(code, 2);
  t.is(stdout, '');
  t.is(stderr, 'proxyline: unknown command "hra" (see --help)\n');
});
