#!/usr/bin/python3
"""Run ansible-inventory in-process with warning/error line wrapping disabled.

Identical to /usr/bin/ansible-inventory except that Display.columns is set very
large so that [WARNING] and ERROR! messages are printed on one line each (the
real CLI wraps them at the terminal width, or 79 columns when not a tty).
Usage: ansible_inventory_nowrap.py -i CASE/hosts.ini --list
"""
import sys

from ansible.cli import CLI  # noqa: F401  (must be imported first)
from ansible.utils.display import Display

Display().columns = 1000000

from ansible.cli.inventory import main  # noqa: E402

if __name__ == '__main__':
    sys.argv[0] = 'ansible-inventory'
    main()
