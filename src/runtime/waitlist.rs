//! An intrusive FIFO of waiters, each on its own stack, for the objects whose waiters
//! must be able to leave from anywhere in the queue (a timeout, later a
//! cancellation): the semaphore, the condition variable, the SIGCHLD watch of
//! `gr_waitpid`. The owner's lock guards the list and every node's links.
//!
//! A node knows whether it is linked, so `unlink` is safe to call on a node that a
//! waker already took off. A waker that takes several nodes off moves them to a
//! private `List` of its own (the same links), and wakes them once it has released
//! the lock, reading each node's successor before waking it.

use core::ptr;

/// The links a node embeds.
pub(crate) struct Links<T> {
    prev: *mut T,
    next: *mut T,
    linked: bool,
}

impl<T> Links<T> {
    pub(crate) const fn new() -> Self {
        Links {
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
            linked: false,
        }
    }
}

/// A type that embeds `Links` to itself.
///
/// # Safety
/// `links` returns the address of the node's own `Links`, for any valid node.
pub(crate) unsafe trait Node: Sized {
    /// # Safety
    /// `this` is a valid node.
    unsafe fn links(this: *mut Self) -> *mut Links<Self>;
}

/// Makes `$t` a `Node` through its `Links` field `$field`.
macro_rules! waitlist_node {
    ($t:ty, $field:ident) => {
        // SAFETY: links returns the node's own `Links` field.
        unsafe impl $crate::runtime::waitlist::Node for $t {
            unsafe fn links(this: *mut Self) -> *mut $crate::runtime::waitlist::Links<Self> {
                // SAFETY: our contract: `this` is a valid node.
                unsafe { core::ptr::addr_of_mut!((*this).$field) }
            }
        }
    };
}
pub(crate) use waitlist_node;

pub(crate) struct List<T> {
    first: *mut T,
    last: *mut T,
}

impl<T: Node> List<T> {
    pub(crate) const fn new() -> Self {
        List {
            first: ptr::null_mut(),
            last: ptr::null_mut(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_null()
    }

    #[inline]
    pub(crate) fn first(&self) -> *mut T {
        self.first
    }

    /// The node after `n` (null at the end).
    ///
    /// # Safety
    /// `n` is a valid node on a list whose lock is held (or a private list).
    #[inline]
    pub(crate) unsafe fn next(n: *mut T) -> *mut T {
        // SAFETY: our contract.
        unsafe { (*T::links(n)).next }
    }

    /// Walks the nodes from `n` on, in order. `f` gets each node after its successor
    /// was read, so it may unlink the node, put it on another list or wake it (and
    /// never look at it again); the walk stops when `f` returns false.
    ///
    /// # Safety
    /// `n` is null or a valid node on a list whose lock is held (or a private list),
    /// and `f` changes no link but those of the node it gets.
    pub(crate) unsafe fn walk(mut n: *mut T, mut f: impl FnMut(*mut T) -> bool) {
        while !n.is_null() {
            // SAFETY: our contract: n is a valid, linked node.
            let next = unsafe { Self::next(n) };
            if !f(n) {
                return;
            }
            n = next;
        }
    }

    /// Takes every node off, first to last, and hands each to `f` only once it is
    /// off (unlinked, so an owner that `f` wakes finds it on no list and does not
    /// try to unlink it from the list it waited on). Nothing here touches a node
    /// after `f` got it: `f` may let its owner free it.
    ///
    /// # Safety
    /// As for `unlink`, for every node; `f` is the only one that still holds them.
    pub(crate) unsafe fn drain(&mut self, mut f: impl FnMut(*mut T)) {
        while !self.first.is_null() {
            let n = self.first;
            // SAFETY: our contract: n is linked here, and its successor (now first)
            // is not yet handed to anyone.
            unsafe { self.unlink(n) };
            f(n);
        }
    }

    /// Appends `n`.
    ///
    /// # Safety
    /// `n` is valid and on no list, and stays valid until it is unlinked; the owner's
    /// lock is held.
    pub(crate) unsafe fn push(&mut self, n: *mut T) {
        // SAFETY: our contract; linked nodes are valid (their owners unlink them, under
        // the lock, before they go away).
        unsafe {
            let l = T::links(n);
            (*l).prev = self.last;
            (*l).next = ptr::null_mut();
            (*l).linked = true;
            if self.last.is_null() {
                self.first = n;
            } else {
                (*T::links(self.last)).next = n;
            }
            self.last = n;
        }
    }

    /// Takes `n` off the list; a no-op if it is not linked.
    ///
    /// # Safety
    /// `n` is valid, and on this list if linked; the owner's lock is held.
    pub(crate) unsafe fn unlink(&mut self, n: *mut T) {
        // SAFETY: our contract; its neighbours are linked, hence valid.
        unsafe {
            let l = T::links(n);
            if !(*l).linked {
                return;
            }
            let (p, x) = ((*l).prev, (*l).next);
            if p.is_null() {
                self.first = x;
            } else {
                (*T::links(p)).next = x;
            }
            if x.is_null() {
                self.last = p;
            } else {
                (*T::links(x)).prev = p;
            }
            (*l).prev = ptr::null_mut();
            (*l).next = ptr::null_mut();
            (*l).linked = false;
        }
    }

    /// Whether `n` is linked (on this list, for a node only ever put on it).
    ///
    /// # Safety
    /// `n` is valid; the owner's lock is held.
    pub(crate) unsafe fn is_linked(n: *mut T) -> bool {
        // SAFETY: our contract.
        unsafe { (*T::links(n)).linked }
    }
}
