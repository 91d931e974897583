// The WebSub hub: topics, subscribers with their backlog, dead letters with retry; each list
// a page at a time.
import { del, enc, post } from '../../api.js';
import { ErrorBox, PageHead } from '../../components/bits.jsx';
import { DataTable } from '../../components/DataTable.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { Pager } from '../../components/Pager.jsx';
import { dateTime } from '../../format.js';
import { useAction, useInterval, useListPages } from '../../hooks.js';
import { can } from '../../session.js';

const TABS = [
  ['topics', 'Topics'],
  ['subscribers', 'Subscribers'],
  ['dead-letters', 'Dead letters'],
];

const time = (k) => (r) => dateTime(r[k]);

function Topics() {
  const list = useListPages('/websub/topics', { keyOf: (t) => t.hash });
  useInterval(list.reload, 5000);
  return (
    <>
      <ErrorBox error={list.error} />
      <DataTable rows={list.data} rowKey={(r) => r.hash} empty="No topics yet." columns={[{ label: 'Topic', key: 'url' }, { label: 'Registered', render: (r) => (r.registered ? 'yes' : 'no') }, { label: 'Subscribers', key: 'subscribers', num: true }, { label: 'Notifications', key: 'notifications', num: true }, { label: 'Last published', render: time('last_published_at') }]} />
      {list.data?.length > 0 && <Pager pages={list} shown={list.data.length} label="on this page" />}
    </>
  );
}

function Subscribers({ user }) {
  const list = useListPages('/websub/subscriptions');
  useInterval(list.reload, 5000);
  const remove = useAction(async (id) => {
    await del(`/websub/subscriptions/${enc(id)}`);
    list.reload();
  }, { done: 'Removed' });
  return (
    <>
      <ErrorBox error={list.error} />
      <DataTable
        rows={list.data}
        empty="No subscribers yet."
        columns={[
          { label: 'Callback', key: 'callback', class: 'clip' },
          { label: 'Topic', key: 'topic', class: 'clip' },
          { label: 'State', key: 'state' },
          { label: 'Backlog', key: 'backlog', num: true },
          { label: 'Lease until', render: time('lease_expires_at') },
          { label: 'Last delivery', render: time('last_delivery_at') },
          { label: 'Failures', key: 'failures', num: true },
          { label: '', class: 'actions', render: (r) => can(user, 'write') && <button type="button" class="small danger" onClick={() => confirmAction('Remove this subscriber?') && remove.run(r.id)}>Remove</button> },
        ]}
      />
      {list.data?.length > 0 && <Pager pages={list} shown={list.data.length} label="on this page" />}
    </>
  );
}

function DeadLetters({ user }) {
  const list = useListPages('/websub/dead-letters', { param: 'before' });
  const retry = useAction(async (id) => {
    await post(`/websub/dead-letters/${enc(id)}/retry`);
    list.reload();
  }, { done: 'Queued again' });
  const discard = useAction(async (id) => {
    await del(`/websub/dead-letters/${enc(id)}`);
    list.reload();
  }, { done: 'Discarded' });
  return (
    <>
      <ErrorBox error={list.error} />
      <DataTable
        rows={list.data}
        empty="No dead letters."
        columns={[
          { label: 'When', render: time('created_at') },
          { label: 'Subscriber', key: 'subscription_id', class: 'clip' },
          { label: 'Topic', key: 'topic', class: 'clip' },
          { label: 'Attempts', key: 'attempts', num: true },
          { label: 'Last error', key: 'last_error', class: 'clip' },
          {
            label: '',
            class: 'actions',
            render: (r) =>
              can(user, 'write') && (
                <>
                  <button type="button" class="small" onClick={() => retry.run(r.id)}>
                    Retry
                  </button>
                  <button type="button" class="small danger" onClick={() => confirmAction('Discard this dead letter?') && discard.run(r.id)}>
                    Discard
                  </button>
                </>
              ),
          },
        ]}
      />
      {list.data?.length > 0 && <Pager pages={list} shown={list.data.length} label="on this page" />}
    </>
  );
}

export function Hub({ tab = 'topics', user }) {
  return (
    <div class="page">
      <PageHead title="WebSub hub" />
      <div class="tabs">
        {TABS.map(([key, label]) => (
          <a key={key} class={tab === key ? 'tab current' : 'tab'} href={`/hub/${key}`}>
            {label}
          </a>
        ))}
      </div>
      {tab === 'topics' && <Topics />}
      {tab === 'subscribers' && <Subscribers user={user} />}
      {tab === 'dead-letters' && <DeadLetters user={user} />}
    </div>
  );
}
