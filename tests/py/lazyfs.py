"""A filesystem that loses power on command (in the spirit of Jepsen's LazyFS), for the
power-cut test (test_power_cut.py).

Everything lives in memory, in two versions: what programs see, and what is on "disk". Writes
change only the first. `fsync` of a file puts its content on disk, and its name too if the file
has no name on disk yet (a journaling filesystem commits a new file's directory entry with its
first fsync). `fsync` of a directory puts its list of entries on disk: a rename, an unlink or a
hard link made in it is durable only then. Files opened with O_SYNC/O_DSYNC sync every write.
The `crash` command throws away everything that is not on disk, as a power cut would.

Run:  python lazyfs.py MOUNTPOINT CONTROL_SOCKET
The control socket (a Unix socket) takes one line per connection and answers one line:
  crash   -> "ok <bytes of file data lost> <names lost>"   (net; the processes using the
             filesystem must have been killed first: it is a power cut)
  stats   -> "ok <fsyncs> <dir fsyncs> <writes>"
Mounted with direct_io and zero cache timeouts, so the kernel keeps no copy that could
outlive a crash. Needs libfuse3 (Debian: fuse3) and the mfusepy package; run as root.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
import threading
import time

import mfusepy as fuse


class Node:
    __slots__ = ("is_dir", "data", "synced", "children", "synced_children", "mode",
                 "mtime", "parent", "name", "disk_refs", "nlink")

    def __init__(self, is_dir: bool, mode: int):
        self.is_dir = is_dir
        self.mode = mode
        self.mtime = time.time_ns()
        self.data = bytearray()
        self.synced: bytes | None = None  # file content on disk (None: never synced)
        self.children: dict[str, Node] = {}
        self.synced_children: dict[str, Node] = {}  # directory entries on disk
        self.parent: Node | None = None
        self.name = ""
        self.disk_refs = 0  # entries on disk naming this node
        self.nlink = 1


def _errno(code: int) -> fuse.FuseOSError:
    return fuse.FuseOSError(code)


class LazyFS(fuse.Operations):
    use_ns = True

    def __init__(self):
        self._mutex = threading.Lock()
        self.root = Node(True, stat.S_IFDIR | 0o755)
        self.handles: dict[int, tuple[Node, int]] = {}
        self.next_fh = 1
        self.fsyncs = self.dir_fsyncs = self.writes = 0

    # --- helpers (lock held) --------------------------------------------------------------

    def _lookup(self, path: str) -> Node:
        node = self.root
        for part in [p for p in path.split("/") if p]:
            if not node.is_dir or part not in node.children:
                raise _errno(errno.ENOENT)
            node = node.children[part]
        return node

    def _parent(self, path: str) -> tuple[Node, str]:
        head, name = os.path.split(path.rstrip("/"))
        parent = self._lookup(head or "/")
        if not parent.is_dir:
            raise _errno(errno.ENOTDIR)
        return parent, name

    def _attach(self, parent: Node, name: str, node: Node) -> None:
        old = parent.children.get(name)
        if old is not None:
            old.nlink -= 1
        parent.children[name] = node
        node.parent, node.name = parent, name

    def _set_disk_entry(self, parent: Node, name: str, node: Node | None) -> None:
        old = parent.synced_children.get(name)
        if old is node:
            return
        if old is not None:
            old.disk_refs -= 1
        if node is None:
            parent.synced_children.pop(name, None)
        else:
            parent.synced_children[name] = node
            node.disk_refs += 1

    def _ensure_named_on_disk(self, node: Node) -> None:
        """A new file's first fsync also commits its name (and its parents' names)."""
        while node is not self.root and node.disk_refs == 0 and node.parent is not None:
            self._set_disk_entry(node.parent, node.name, node)
            node = node.parent

    def _handle(self, node: Node, flags: int) -> int:
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = (node, flags)
        return fh

    # --- the power cut -----------------------------------------------------------------------

    def crash(self) -> tuple[int, int]:
        with self._mutex:
            before_bytes = sum(len(f.data) for f in self._all_files())
            before_entries = sum(len(d.children) for d in self._all_dirs())
            stack, seen = [self.root], set()
            while stack:
                d = stack.pop()
                if id(d) in seen:
                    continue
                seen.add(id(d))
                d.children = dict(d.synced_children)
                for name, child in d.children.items():
                    child.parent, child.name = d, name
                    if child.is_dir:
                        stack.append(child)
                    else:
                        child.data = bytearray(child.synced or b"")
            # Recount links and disk references from what survived.
            for d in self._all_dirs():
                for child in d.children.values():
                    child.nlink = child.disk_refs = 0
            for d in self._all_dirs():
                for child in d.children.values():
                    child.nlink += 1
                    child.disk_refs += 1
            self.handles.clear()
            after_bytes = sum(len(f.data) for f in self._all_files())
            after_entries = sum(len(d.children) for d in self._all_dirs())
            return before_bytes - after_bytes, before_entries - after_entries

    def _all_files(self):
        return [c for d in self._all_dirs() for c in d.children.values() if not c.is_dir]

    def _all_dirs(self):
        stack, out = [self.root], []
        while stack:
            d = stack.pop()
            out.append(d)
            stack.extend(c for c in d.children.values() if c.is_dir)
        return out

    # --- FUSE operations -----------------------------------------------------------------------

    def getattr(self, path, fh=None):
        with self._mutex:
            node = self.handles[fh][0] if fh in self.handles else self._lookup(path)
            size = 4096 if node.is_dir else len(node.data)
            return {"st_mode": node.mode, "st_nlink": max(node.nlink, 1), "st_size": size,
                    "st_uid": os.getuid(), "st_gid": os.getgid(), "st_blocks": (size + 511) // 512,
                    "st_atime": node.mtime, "st_mtime": node.mtime, "st_ctime": node.mtime}

    def access(self, path, amode):
        with self._mutex:
            self._lookup(path)
            return 0

    def readdir(self, path, fh):
        with self._mutex:
            node = self._lookup(path)
            return [".", "..", *node.children]

    def mkdir(self, path, mode):
        with self._mutex:
            parent, name = self._parent(path)
            if name in parent.children:
                raise _errno(errno.EEXIST)
            self._attach(parent, name, Node(True, stat.S_IFDIR | (mode & 0o7777)))
            return 0

    def rmdir(self, path):
        with self._mutex:
            parent, name = self._parent(path)
            node = self._lookup(path)
            if not node.is_dir:
                raise _errno(errno.ENOTDIR)
            if node.children:
                raise _errno(errno.ENOTEMPTY)
            del parent.children[name]
            node.parent = None
            return 0

    def create(self, path, mode, flags):
        with self._mutex:
            parent, name = self._parent(path)
            node = parent.children.get(name)
            if node is None:
                node = Node(False, stat.S_IFREG | (mode & 0o7777))
                self._attach(parent, name, node)
            elif flags & os.O_EXCL:
                raise _errno(errno.EEXIST)
            return self._handle(node, flags)

    def open(self, path, flags):
        with self._mutex:
            node = self._lookup(path)
            if flags & os.O_TRUNC:
                node.data = bytearray()
            return self._handle(node, flags)

    def read(self, path, size, offset, fh):
        with self._mutex:
            node = self.handles[fh][0]
            return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        with self._mutex:
            node, flags = self.handles[fh]
            if flags & os.O_APPEND:
                offset = len(node.data)
            if offset > len(node.data):
                node.data.extend(b"\0" * (offset - len(node.data)))
            node.data[offset:offset + len(data)] = data
            node.mtime = time.time_ns()
            self.writes += 1
            if flags & (os.O_SYNC | os.O_DSYNC):
                self._fsync_node(node)
            return len(data)

    def truncate(self, path, length, fh=None):
        with self._mutex:
            node = self.handles[fh][0] if fh in self.handles else self._lookup(path)
            if length < len(node.data):
                del node.data[length:]
            else:
                node.data.extend(b"\0" * (length - len(node.data)))
            node.mtime = time.time_ns()
            return 0

    def _fsync_node(self, node: Node) -> None:
        node.synced = bytes(node.data)
        self._ensure_named_on_disk(node)
        self.fsyncs += 1

    def fsync(self, path, datasync, fh):
        with self._mutex:
            self._fsync_node(self.handles[fh][0])
            return 0

    def fsyncdir(self, path, datasync, fh):
        with self._mutex:
            d = self._lookup(path)
            for name in list(d.synced_children):
                if d.children.get(name) is not d.synced_children[name]:
                    self._set_disk_entry(d, name, None)
            for name, child in d.children.items():
                self._set_disk_entry(d, name, child)
            self._ensure_named_on_disk(d)
            self.dir_fsyncs += 1
            return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        with self._mutex:
            self.handles.pop(fh, None)
            return 0

    def unlink(self, path):
        with self._mutex:
            parent, name = self._parent(path)
            node = self._lookup(path)
            if node.is_dir:
                raise _errno(errno.EISDIR)
            del parent.children[name]
            node.nlink -= 1
            if node.parent is parent and node.name == name:
                node.parent = None
            return 0

    def rename(self, old, new):
        with self._mutex:
            oparent, oname = self._parent(old)
            node = self._lookup(old)
            nparent, nname = self._parent(new)
            target = nparent.children.get(nname)
            if target is node:
                return 0
            if target is not None and target.is_dir and target.children:
                raise _errno(errno.ENOTEMPTY)
            del oparent.children[oname]
            self._attach(nparent, nname, node)
            return 0

    def link(self, target, source):
        with self._mutex:
            node = self._lookup(source)
            parent, name = self._parent(target)
            if name in parent.children:
                raise _errno(errno.EEXIST)
            parent.children[name] = node
            node.nlink += 1
            if node.parent is None:
                node.parent, node.name = parent, name
            return 0

    def chmod(self, path, mode):
        with self._mutex:
            node = self._lookup(path)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
            return 0

    def chown(self, path, uid, gid):
        return 0

    def utimens(self, path, times=None):
        with self._mutex:
            node = self._lookup(path)
            node.mtime = times[1] if times else time.time_ns()
            return 0

    def statfs(self, path):
        total, free = 8 << 18, 8 << 18  # 8 GiB in 4 KiB blocks
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": total, "f_bfree": free,
                "f_bavail": free, "f_files": 1 << 20, "f_ffree": 1 << 20, "f_namemax": 255}


def serve_control(fs: LazyFS, path: str) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(4)
    while True:
        conn, _ = sock.accept()
        with conn:
            command = conn.makefile("r").readline().strip()
            if command == "crash":
                lost_bytes, lost_entries = fs.crash()
                answer = f"ok {lost_bytes} {lost_entries}"
            elif command == "stats":
                answer = f"ok {fs.fsyncs} {fs.dir_fsyncs} {fs.writes}"
            else:
                answer = f"error unknown command {command!r}"
            conn.sendall(answer.encode() + b"\n")


def main() -> None:
    mountpoint, control = sys.argv[1], sys.argv[2]
    fs = LazyFS()
    threading.Thread(target=serve_control, args=(fs, control), daemon=True).start()
    fuse.FUSE(fs, mountpoint, foreground=True, nothreads=False, direct_io=True,
              attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="lazyfs")


if __name__ == "__main__":
    main()
