"""
One process of dstore's test S3 server: OpenStack Swift (Debian's python3-swift) with s3api and
tempauth, and memcached. Started by test/s3-server.ts under /usr/bin/python3 (the interpreter that
has Swift), never by hand.

Every mode first asks the kernel to SIGKILL this process when its parent dies
(PR_SET_PDEATHSIG), so a crashed or killed test run leaves no server behind.

    run.py PARENT_PID rings SWIFT_DIR ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT DEVICE
    run.py PARENT_PID server SWIFT_DIR CONF_FILE APP_SECTION
    run.py PARENT_PID exec PROGRAM [ARG...]
"""
import ctypes
import os
import sys

PR_SET_PDEATHSIG = 1
SIGKILL = 9


def die_with_parent(parent_pid):
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, SIGKILL)
    # The parent may have died before prctl took effect: then nobody would kill us.
    if os.getppid() != parent_pid:
        os._exit(1)


def build_rings(swift_dir, account_port, container_port, object_port, device):
    """One ring per server kind: one device, one replica, 2^6 partitions (enough for tests)."""
    from swift.common.ring import RingBuilder
    for kind, port in (('account', account_port), ('container', container_port), ('object', object_port)):
        builder = RingBuilder(6, 1, 0)
        builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port),
                         'device': device, 'weight': 100.0, 'meta': ''})
        builder.rebalance()
        builder.get_ring().save(os.path.join(swift_dir, kind + '.ring.gz'))


def run_server(swift_dir, conf_file, app_section):
    from swift.common import utils
    # swift.conf (the hash path suffix, the storage policies) lives in the temp folder, not /etc/swift.
    utils.set_swift_dir(swift_dir)
    from swift.common.wsgi import run_wsgi
    return run_wsgi(conf_file, app_section, verbose=True)


def main(argv):
    die_with_parent(int(argv[1]))
    mode = argv[2]
    if mode == 'rings':
        build_rings(*argv[3:8])
        return 0
    if mode == 'server':
        return run_server(*argv[3:6])
    if mode == 'exec':
        os.execv(argv[3], argv[3:])
    print('run.py: unknown mode %r' % mode, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
