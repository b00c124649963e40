//! The component's allocator: a bump arena that lives as long as one call.
//!
//! The host runs every call in a fresh instance and throws the instance
//! away when the call returns, so memory freed during a call is only worth
//! reusing if the call would otherwise run short of it. wasi-libc's
//! dlmalloc does the bookkeeping for reuse on every allocation and every
//! free (about 30 % of the guest's time in a profile of a sync: the host
//! lowers each string of a call's arguments through `cabi_realloc`, and the
//! connector builds and drops thousands of small strings), and in
//! WebAssembly that bookkeeping runs at a fraction of native speed.
//!
//! Here an allocation moves a pointer, and freeing does nothing except
//! roll back the most recent allocation (a scratch string dropped at once).
//! The most recent allocation also grows in place, as a request body
//! being written does. The arena is bounded: once its region is used up,
//! allocations go to dlmalloc, so a call that allocates far more than the
//! arena (a large page of records) still reuses memory and stays inside the
//! host's memory cap.

/// The arena's size. A sync's calls allocate well under this (a create of
/// 200 records, a lookup of 1,000 values); a larger call spills into
/// dlmalloc. Its untouched pages cost nothing: linear memory is only
/// committed where written.
#[cfg(target_arch = "wasm32")]
const ARENA_BYTES: usize = 1 << 20;

/// A bump region over addresses `[start, end)`; `top` is the first free
/// byte. Pure address arithmetic, so that it is tested natively.
#[derive(Debug)]
pub(crate) struct Bump {
    start: usize,
    top: usize,
    end: usize,
}

impl Bump {
    /// An arena with no region: it owns nothing and every allocation
    /// misses.
    pub(crate) const fn empty() -> Bump {
        Bump {
            start: 0,
            top: 0,
            end: 0,
        }
    }

    pub(crate) fn over(start: usize, len: usize) -> Bump {
        Bump {
            start,
            top: start,
            end: start.saturating_add(len),
        }
    }

    /// Whether the arena has been given a region yet.
    pub(crate) fn is_unset(&self) -> bool {
        self.end == 0
    }

    /// Whether `address` came from this arena.
    pub(crate) fn owns(&self, address: usize) -> bool {
        (self.start..self.end).contains(&address)
    }

    /// The address of `size` bytes aligned to `align` (a power of two), or
    /// `None` when the region has no room left.
    pub(crate) fn alloc(&mut self, size: usize, align: usize) -> Option<usize> {
        let at = self.top.checked_add(align - 1)? & !(align - 1);
        let next = at.checked_add(size)?;
        if next > self.end || self.start == self.end {
            return None;
        }
        self.top = next;
        Some(at)
    }

    /// Frees `size` bytes at `address`: only the most recent allocation is
    /// taken back, the rest waits for the instance to go.
    pub(crate) fn free(&mut self, address: usize, size: usize) {
        if address.checked_add(size) == Some(self.top) {
            self.top = address;
        }
    }

    /// Resizes the allocation at `address` from `old` to `new` bytes where
    /// it stands, if it can: any allocation can shrink, and the most recent
    /// can grow while the region has room.
    pub(crate) fn resize(&mut self, address: usize, old: usize, new: usize) -> bool {
        let is_last = address.checked_add(old) == Some(self.top);
        if is_last {
            match address.checked_add(new) {
                Some(next) if next <= self.end => {
                    self.top = next;
                    true
                }
                _ => false,
            }
        } else {
            new <= old
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) use component::CallArena;

#[cfg(target_arch = "wasm32")]
mod component {
    use super::{ARENA_BYTES, Bump};
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::UnsafeCell;
    use std::mem::MaybeUninit;

    /// The global allocator of the component: [`Bump`] over a static region,
    /// dlmalloc beyond it.
    ///
    /// The region is zero-initialized data, so it is part of the instance's
    /// initial linear memory: allocating from it never grows the memory,
    /// which would cost the host a change of page protection on the way in
    /// and on the way out of every call.
    pub(crate) struct CallArena {
        bump: UnsafeCell<Bump>,
        region: UnsafeCell<[MaybeUninit<u8>; ARENA_BYTES]>,
    }

    // SAFETY: wasm32-wasip2 components are single-threaded; the allocator
    // is never entered from two threads (a threaded build is refused below).
    unsafe impl Sync for CallArena {}

    #[cfg(target_feature = "atomics")]
    compile_error!("the call arena is single-threaded; build for wasm32-wasip2 without threads");

    impl CallArena {
        pub(crate) const fn new() -> CallArena {
            CallArena {
                bump: UnsafeCell::new(Bump::empty()),
                region: UnsafeCell::new([MaybeUninit::uninit(); ARENA_BYTES]),
            }
        }

        /// The arena, over its region from the first use on (a region's
        /// address is not known at compile time).
        ///
        /// SAFETY: single-threaded, and no reference outlives the call of
        /// the allocator that took it.
        #[allow(clippy::mut_from_ref)]
        unsafe fn bump(&self) -> &mut Bump {
            // SAFETY: see above.
            let bump = unsafe { &mut *self.bump.get() };
            if bump.is_unset() {
                *bump = Bump::over(self.region.get() as usize, ARENA_BYTES);
            }
            bump
        }
    }

    unsafe impl GlobalAlloc for CallArena {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: see `bump`.
            match unsafe { self.bump() }.alloc(layout.size(), layout.align()) {
                Some(address) => address as *mut u8,
                // SAFETY: the caller's layout, passed on.
                None => unsafe { System.alloc(layout) },
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: see `bump`.
            let bump = unsafe { self.bump() };
            if bump.owns(ptr as usize) {
                bump.free(ptr as usize, layout.size());
            } else {
                // SAFETY: not the arena's, so dlmalloc's, with this layout.
                unsafe { System.dealloc(ptr, layout) }
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: see `bump`.
            let bump = unsafe { self.bump() };
            if !bump.owns(ptr as usize) {
                // SAFETY: dlmalloc's allocation, passed on as given.
                return unsafe { System.realloc(ptr, layout, new_size) };
            }
            if bump.resize(ptr as usize, layout.size(), new_size) {
                return ptr;
            }
            // SAFETY: `new_size` with the old alignment is a valid layout,
            // as the caller guarantees.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: a valid layout.
            let moved = unsafe { self.alloc(new_layout) };
            if !moved.is_null() {
                // SAFETY: distinct allocations, each at least this long.
                unsafe { std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
                // SAFETY: the old allocation, with its layout.
                unsafe { self.dealloc(ptr, layout) };
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bump;

    #[test]
    fn allocations_are_aligned_and_do_not_overlap() {
        let mut bump = Bump::over(1001, 100);
        let a = bump.alloc(3, 1).unwrap();
        let b = bump.alloc(8, 8).unwrap();
        let c = bump.alloc(1, 16).unwrap();
        assert_eq!(a, 1001);
        assert_eq!(b, 1008, "rounded up to 8 past a's end");
        assert_eq!(c, 1024);
        assert!(bump.owns(a) && bump.owns(c) && !bump.owns(1101) && !bump.owns(1000));
    }

    #[test]
    fn a_full_region_misses_instead_of_overflowing() {
        let mut bump = Bump::over(0x1000, 32);
        assert!(bump.alloc(32, 1).is_some());
        assert_eq!(bump.alloc(1, 1), None);
        let mut near_the_top = Bump::over(usize::MAX - 8, 8);
        assert_eq!(near_the_top.alloc(4, 16), None, "alignment past usize::MAX");
        assert!(Bump::empty().is_unset() && !Bump::over(usize::MAX, 0).is_unset());
        assert_eq!(Bump::empty().alloc(1, 1), None);
        assert_eq!(Bump::over(usize::MAX, 0).alloc(0, 1), None);
    }

    #[test]
    fn only_the_latest_allocation_is_taken_back() {
        let mut bump = Bump::over(0x1000, 64);
        let a = bump.alloc(16, 8).unwrap();
        let b = bump.alloc(16, 8).unwrap();
        bump.free(a, 16);
        assert_eq!(bump.alloc(8, 8), Some(0x1020), "a is not reused");
        bump.free(0x1020, 8);
        bump.free(b, 16);
        assert_eq!(
            bump.alloc(8, 8),
            Some(b),
            "b, then the scratch after it, are"
        );
    }

    #[test]
    fn the_latest_allocation_grows_in_place_and_any_shrinks() {
        let mut bump = Bump::over(0x1000, 128);
        let a = bump.alloc(8, 8).unwrap();
        assert!(bump.resize(a, 8, 40), "latest, with room");
        assert!(!bump.resize(a, 40, 129), "past the region");
        let b = bump.alloc(8, 8).unwrap();
        assert_eq!(b, 0x1028);
        assert!(!bump.resize(a, 40, 48), "no longer the latest");
        assert!(bump.resize(a, 40, 16), "shrinks where it stands");
        assert!(bump.resize(b, 8, 24));
        assert_eq!(bump.alloc(1, 1), Some(0x1040), "after b's new end");
    }
}
