#!/usr/bin/python3
"""Regenerate the ansible-inventory snapshots of the corpus.

For every test/inventory/corpus/<case>/hosts.ini:
  * run ansible-inventory --list (ini plugin only, unparsed = failure) from an
    empty temporary working directory (ansible also loads group_vars/ and
    host_vars/ relative to the *current directory* -- the "play" basedir --
    so the cwd must not contain such directories),
  * fail if it does not exit 0,
  * write its stdout to <case>/expected.json,
  * keep line 1 of <case>/README and rewrite the warnings block after it.

For every test/inventory/bad/<case>/hosts.ini, run the same command and write
<case>/ansible: verdict (rejected / accepted / crashed), exit code, stderr and,
when ansible accepted it, stdout.

Paths under the case directory are printed as CASE/... .
Usage: tools/regen.py [--check]   (--check: compare, do not write; exit 1 on drift)
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NOWRAP = os.path.join(HERE, 'ansible_inventory_nowrap.py')
PYTHON = '/usr/bin/python3'  # the interpreter of Debian's ansible-inventory

ENV = dict(os.environ)
for k in list(ENV):
    if k.startswith('ANSIBLE_'):
        del ENV[k]
ENV.update({
    'ANSIBLE_INVENTORY_ENABLED': 'ini',
    'ANSIBLE_INVENTORY_UNPARSED_FAILED': 'true',
    'ANSIBLE_NOCOLOR': '1',
    'LC_ALL': 'C.UTF-8',
})
ENV.pop('PYTHONINTMAXSTRDIGITS', None)


def run(case_dir):
    with tempfile.TemporaryDirectory() as cwd:
        p = subprocess.run([PYTHON, NOWRAP, '-i', os.path.join(case_dir, 'hosts.ini'), '--list'],
                           cwd=cwd, env=ENV, capture_output=True)
    out = p.stdout.decode('utf-8', 'replace')
    err = p.stderr.decode('utf-8', 'replace').replace(case_dir + '/', 'CASE/')
    return p.returncode, out, err


def write(path, text, check, drift):
    old = None
    if os.path.exists(path):
        with open(path, encoding='utf-8') as f:
            old = f.read()
    if old != text:
        drift.append(path)
        if not check:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)


def main():
    check = '--check' in sys.argv[1:]
    drift, failures = [], []

    corpus = os.path.join(ROOT, 'corpus')
    for name in sorted(os.listdir(corpus)):
        d = os.path.join(corpus, name)
        rc, out, err = run(d)
        if rc != 0:
            failures.append('%s: rc=%d\n%s' % (name, rc, err))
            continue
        write(os.path.join(d, 'expected.json'), out, check, drift)
        with open(os.path.join(d, 'README'), encoding='utf-8') as f:
            first = f.read().split('\n', 1)[0]
        readme = first + '\n'
        # sorted: some warnings come from set iteration (hash-randomised order)
        warnings = sorted(l for l in err.splitlines() if l.strip())
        if warnings:
            readme += 'ansible-inventory warnings (stderr):\n' + ''.join('  %s\n' % l for l in warnings)
        write(os.path.join(d, 'README'), readme, check, drift)

    bad = os.path.join(ROOT, 'bad')
    for name in sorted(os.listdir(bad)):
        d = os.path.join(bad, name)
        rc, out, err = run(d)
        if rc == 0:
            verdict = 'accepted'
        elif rc == 250:
            verdict = 'crashed'  # "Unexpected Exception, this is probably a bug"
        else:
            verdict = 'rejected'
        text = 'verdict: %s\nexit: %d\nstderr:\n%s' % (verdict, rc, ''.join('  %s\n' % l for l in err.splitlines()))
        if rc == 0:
            text += 'stdout:\n' + ''.join('  %s\n' % l for l in out.splitlines())
        write(os.path.join(d, 'ansible'), text, check, drift)

    for f in failures:
        print('FAIL', f, file=sys.stderr)
    for p in drift:
        print(('DRIFT ' if check else 'wrote ') + os.path.relpath(p, ROOT))
    if failures or (check and drift):
        sys.exit(1)


if __name__ == '__main__':
    main()
