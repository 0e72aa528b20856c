/**
 * The Python that has Debian's libyal readers (python3-libvmdk, python3-libvhdi):
 * the system one, which may not be the first python3 on PATH (pyenv).
 */
import { existsSync } from 'node:fs';

export const SYSTEM_PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
